import type { handleUnaryCall } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { SessionStoreServer } from "../../gen/sessionstore/v1/session_store.js";
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
  log: Logger,
): SessionStoreServer {
  function unary<Request extends object, Response>(
    handle: (request: Request) => Promise<Response>,
  ): handleUnaryCall<Request, Response> {
    return (call, callback) => {
      const { request } = call;
      Promise.resolve()
        .then(() => {
          checkDecoded(request);
          return handle(request);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error, log)),
        );
    };
  }

  return {
    append: (call) =>
      streams.run(call, "append", (stopped) => serveAppend(call, sessions, stopped, log)),

    flush: unary(async (request) => {
      const { flushed, failures } = await sessions.flush(request.sessionId);
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
      streams.run(call, "read", (stopped) =>
        streamResponses(
          call,
          checkedStream(call.request, () =>
            sessions.load(call.request.sessionId, {
              fromSeq: call.request.fromSeq,
              limit: call.request.limit,
              last: call.request.last,
            }),
          ),
          stopped,
          log,
        ),
      ),

    loadMeta: unary(async (request) => {
      const meta = await sessions.meta(request.sessionId);
      if (!meta)
        throw new SessionStoreError(Code.NotFound, `session ${request.sessionId} does not exist`);
      return { meta };
    }),

    list: unary((request) => sessions.list(request)),

    delete: unary(async (request) => ({ existed: await sessions.delete(request.sessionId) })),

    watch: (call) =>
      streams.run(call, "read", (stopped) => {
        // Ends the watch when the client goes away or the server stops, even while it waits.
        const cancelled = new AbortController();
        call.on("cancelled", () => cancelled.abort());
        const ended = AbortSignal.any([stopped, cancelled.signal]);
        return streamResponses(
          call,
          checkedStream(call.request, () =>
            sessions.watch(call.request.sessionId, call.request.fromSeq, ended),
          ),
          stopped,
          log,
        );
      }),
  };
}
