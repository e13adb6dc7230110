import type {
  handleBidiStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  type AppendResponse,
  ListOrder,
  type LoadRequest,
  type SessionStoreServer,
  type SessionStoreService,
  type WatchRequest,
  type SessionMeta as WireSessionMeta,
} from "../../gen/sessionstore/v1/session_store.js";
import type { Access, Scope } from "../auth/access.js";
import { invalidArgument, sessionNotFound } from "../errors.js";
import type { LoadedPage, SessionService, WatchEvent } from "../sessions/session-service.js";
import type { ListOrder as ListOrderName, SessionMeta } from "../store/storage.js";
import { serveAppend } from "./append-call.js";
import { type AppendRequestBytes, checkDecoded, checkedStream } from "./request-decoding.js";
import type { LoadResponseBytes, WatchResponseBytes } from "./response-encoding.js";
import { toServiceError } from "./status.js";
import { type StreamingCalls, streamResponses } from "./streaming-calls.js";

/**
 * The handlers of strictSessionStoreService (src/server/request-decoding.ts): the generated
 * server's, except for the calls whose messages stay bytes.
 */
export type SessionStoreHandlers = {
  [Name in Exclude<
    keyof typeof SessionStoreService,
    "append" | "load" | "watch"
  >]: SessionStoreServer[Name];
} & {
  append: handleBidiStreamingCall<AppendRequestBytes, AppendResponse>;
  load: handleServerStreamingCall<LoadRequest, LoadResponseBytes>;
  watch: handleServerStreamingCall<WatchRequest, WatchResponseBytes>;
};

/** The SessionStore RPCs, each a thin translation between the wire and the session manager. */
export function sessionStoreHandlers(
  sessions: SessionService,
  streams: StreamingCalls,
  access: Access,
  log: Logger,
): SessionStoreHandlers {
  /** A unary RPC: the caller authorized for `scope`, then `handle` with their tenant. */
  function unary<Request extends object, Response>(
    scope: Scope,
    handle: (tenant: string, request: Request) => Promise<Response>,
  ): handleUnaryCall<Request, Response> {
    return (call, callback) => {
      const { request } = call;
      Promise.resolve()
        .then(() => access.authorize(call, scope))
        .then((tenant) => {
          checkDecoded(request);
          return handle(tenant, request);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error, log)),
        );
    };
  }

  return {
    append: (call) =>
      streams.run(call, "append", async (stopped) => {
        const tenant = await access.authorize(call, "sessions:write");
        return serveAppend(call, sessions, tenant, stopped, log);
      }),

    flush: unary("sessions:write", async (tenant, request) => {
      const { flushed, failures } = await sessions.flush(tenant, request.sessionId);
      return {
        flushed,
        failures: failures.map(({ sessionId, error }) => ({
          sessionId,
          code: error.code,
          message: error.message,
        })),
      };
    }),

    load: (call) =>
      streams.run(call, "read", async (stopped) => {
        const tenant = await access.authorize(call, "sessions:read");
        return streamResponses(
          call,
          checkedStream(call.request, () =>
            toLoadResponses(
              sessions.load(tenant, call.request.sessionId, {
                fromSeq: call.request.fromSeq,
                limit: call.request.limit,
                last: call.request.last,
                maxBytes: call.request.maxBytes,
                wholeTurns: call.request.wholeTurns,
              }),
            ),
          ),
          stopped,
          log,
        );
      }),

    loadMeta: unary("sessions:read", async (tenant, request) => {
      const meta = await sessions.meta(tenant, request.sessionId);
      if (!meta) throw sessionNotFound(request.sessionId);
      return { meta: toWireMeta(meta) };
    }),

    list: unary("sessions:read", async (tenant, request) => {
      const { sessions: found, nextPageToken } = await sessions.list(tenant, {
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        prefix: request.prefix,
        labelSelector: request.labelSelector,
        order: listOrder(request.order),
      });
      return { sessions: found.map(toWireMeta), nextPageToken };
    }),

    setLabels: unary("sessions:write", async (tenant, request) => ({
      meta: toWireMeta(
        await sessions.setLabels(
          tenant,
          request.sessionId,
          request.labels,
          request.expectedLabelsRevision,
        ),
      ),
    })),

    fork: unary("sessions:write", async (tenant, request) => ({
      meta: toWireMeta(
        await sessions.fork(
          tenant,
          request.sessionId,
          request.atSeq,
          request.newSessionId,
          request.labels,
        ),
      ),
    })),

    rewind: unary("sessions:write", async (tenant, request) => {
      const { dropped, meta } = await sessions.rewind(
        tenant,
        request.sessionId,
        request.toSeq,
        request.expectedSeq,
      );
      return { droppedMessages: texts(dropped), meta: toWireMeta(meta) };
    }),

    trim: unary("sessions:write", async (tenant, request) => {
      const { trimmed, meta } = await sessions.trim(tenant, request.sessionId, request.beforeSeq);
      return { trimmed, meta: toWireMeta(meta) };
    }),

    delete: unary("sessions:delete", async (tenant, request) => ({
      existed: await sessions.delete(tenant, request.sessionId),
    })),

    watch: (call) =>
      streams.run(call, "read", async (stopped) => {
        const tenant = await access.authorize(call, "sessions:read");
        // Ends the watch when the client goes away or the server stops, even while it waits.
        const cancelled = new AbortController();
        call.on("cancelled", () => cancelled.abort());
        const ended = AbortSignal.any([stopped, cancelled.signal]);
        return streamResponses(
          call,
          checkedStream(call.request, () =>
            toWatchResponses(
              sessions.watch(tenant, call.request.sessionId, call.request.fromSeq, ended),
            ),
          ),
          stopped,
          log,
        );
      }),
  };
}

/** A session's metadata as the API has it. */
function toWireMeta(meta: SessionMeta): WireSessionMeta {
  return {
    sessionId: meta.sessionId,
    createdAtMs: meta.createdAtMs,
    agentLoopVersion: meta.agentLoopVersion,
    messageCount: meta.messageCount,
    durableCount: meta.durableCount,
    updatedAtMs: meta.updatedAtMs,
    labels: { ...meta.labels },
    labelsRevision: meta.labelsRevision,
    parentSessionId: meta.parent?.sessionId ?? "",
    parentSeq: meta.parent?.seq ?? 0,
    firstSeq: meta.firstSeq,
  };
}

function listOrder(order: ListOrder): ListOrderName {
  if (order === ListOrder.LIST_ORDER_BY_ID) return "id";
  if (order === ListOrder.LIST_ORDER_BY_UPDATED_DESC) return "updated-desc";
  throw invalidArgument(
    `order ${order} is not one this server knows; use LIST_ORDER_BY_ID (0) or LIST_ORDER_BY_UPDATED_DESC (1)`,
  );
}

async function* toLoadResponses(
  pages: AsyncIterable<LoadedPage>,
): AsyncGenerator<LoadResponseBytes> {
  for await (const page of pages) {
    yield {
      firstSeq: page.firstSeq,
      messages: page.messages,
      danglingCallIds: page.danglingCallIds ?? [],
    };
  }
}

async function* toWatchResponses(
  events: AsyncIterable<WatchEvent>,
): AsyncGenerator<WatchResponseBytes> {
  for await (const event of events) {
    yield "rewoundTo" in event
      ? { firstSeq: event.rewoundTo, messages: [], rewoundTo: event.rewoundTo }
      : { firstSeq: event.firstSeq, messages: event.messages };
  }
}

/** Messages as the generated encoder of RewindResponse takes them: strings (UTF-8, as stored). */
function texts(messages: readonly Buffer[]): string[] {
  return messages.map((message) => message.toString("utf8"));
}
