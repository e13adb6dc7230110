import { format } from "node:util";
import { setLogger } from "@grpc/grpc-js";
import type { Logger } from "pino";

/**
 * Sends grpc-js's own log lines into `log`, at debug and marked `component: "grpc-js"`, instead
 * of grpc-js's default: raw text on stderr among our JSON lines. Debug, because at its default
 * verbosity grpc-js logs only errors, and those a server meets repeat a failure our code reports
 * itself (a failed bind rejects bindAsync, and the CLI says what to do) or describe a client's bad
 * input (metadata it cannot parse). GRPC_VERBOSITY and GRPC_TRACE still choose what grpc-js
 * emits. grpc-js has one logger per process, so the CLI sets it, not startServer.
 */
export function logGrpcJsTo(log: Logger): void {
  const grpcLog = log.child({ component: "grpc-js" });
  const write = (message?: unknown, ...rest: unknown[]) =>
    grpcLog.debug(withoutCredentials(format(message, ...rest)));
  setLogger({ error: write, info: write, debug: write });
}

/** Metadata keys holding credentials, with their values, as grpc-js's traces print metadata. */
const CREDENTIALS =
  /("(?:authorization|proxy-authorization|cookie)":\[)(?:"(?:[^"\\]|\\.)*",?)*\]/gi;

/**
 * A grpc-js log line with the values of credentials replaced: with GRPC_TRACE, grpc-js prints
 * each call's metadata (`"authorization":["Bearer ..."]`), and tokens are never logged.
 */
export function withoutCredentials(text: string): string {
  return text.replace(CREDENTIALS, '$1"[redacted]"]');
}
