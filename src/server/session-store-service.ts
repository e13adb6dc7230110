import type { handleUnaryCall } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { SessionStoreServer } from "../../gen/sessionstore/v1/session_store.js";
import type { Access, Scope } from "../auth/access.js";
import { Code, SessionStoreError } from "../errors.js";
import type { SessionService } from "../sessions/session-service.js";
import { serveAppend } from "./append-call.js";
import { checkDecoded, checkedStream } from "./request-decoding.js";
import { toServiceError } from "./status.js";
import { type StreamingCalls, streamResponses } from "./streaming-calls.js";

/** The SessionStore RPCs, each a thin translation between the wire and the session manager. */
export function sessionStoreHandlers(
  sessions: SessionService,
  streams: StreamingCalls,
  access: Access,
  log: Logger,
): SessionStoreServer {
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
            sessions.load(tenant, call.request.sessionId, {
              fromSeq: call.request.fromSeq,
              limit: call.request.limit,
              last: call.request.last,
            }),
          ),
          stopped,
          log,
        );
      }),

    loadMeta: unary("sessions:read", async (tenant, request) => {
      const meta = await sessions.meta(tenant, request.sessionId);
      if (!meta)
        throw new SessionStoreError(Code.NotFound, `session ${request.sessionId} does not exist`);
      return { meta };
    }),

    list: unary("sessions:read", (tenant, request) => sessions.list(tenant, request)),

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
            sessions.watch(tenant, call.request.sessionId, call.request.fromSeq, ended),
          ),
          stopped,
          log,
        );
      }),
  };
}
