import { performance } from "node:perf_hooks";
import {
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from "@grpc/grpc-js";
import type { Logger } from "pino";

/** Codes that mean the server or its storage is in trouble rather than the caller's input. */
const WARN_CODES = new Set<number>([
  status.RESOURCE_EXHAUSTED,
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
]);
const ERROR_CODES = new Set<number>([status.INTERNAL, status.UNKNOWN, status.DATA_LOSS]);

/**
 * Logs one line per finished RPC: at debug when it went as the caller could expect, at warn or
 * error (with the session id of its first request) when the server or its storage failed.
 */
export function loggingInterceptor(log: Logger): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let sessionId: string | undefined;
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              sessionId ??= (message as { sessionId?: string } | undefined)?.sessionId || undefined;
              nextMessage(message);
            })
            .build(),
        ),
      sendStatus: (callStatus, next) => {
        const code = callStatus.code ?? status.OK;
        const level = ERROR_CODES.has(code) ? "error" : WARN_CODES.has(code) ? "warn" : "debug";
        if (log.isLevelEnabled(level)) {
          log[level](
            {
              method: method.path,
              code: status[code],
              ms: Math.round((performance.now() - started) * 10) / 10,
              ...(sessionId === undefined ? {} : { sessionId }),
              ...(code === status.OK ? {} : { details: callStatus.details }),
            },
            "rpc finished",
          );
        }
        next(callStatus);
      },
    });
  };
}
