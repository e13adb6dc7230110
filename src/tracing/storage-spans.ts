import { status } from "@grpc/grpc-js";
import { context, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { Code } from "../errors.js";
import type { StorageEvents } from "../store/storage-events.js";

/**
 * The storage's work as child spans of the traced call that scheduled it: a backend reports
 * each write or sync as it ends, in the context that scheduled it (AsyncLocalStorage carries it
 * through batching), and the span is made then, with the start its duration gives. A batched
 * write holds the messages of every request batched with it, not only those of the call it is
 * the child of: `sessionstore.messages` says how many it wrote. Work with no traced call behind
 * it (a shutdown's last flush) makes no span.
 */
export function storageSpans(tracer: Tracer): StorageEvents {
  const record = (
    name: string,
    seconds: number,
    attributes: Record<string, number>,
    failed?: string,
  ) => {
    const parent = context.active();
    if (!trace.getSpan(parent)) return;
    const span = tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, startTime: performance.now() - seconds * 1000, attributes },
      parent,
    );
    if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: failed });
    span.end();
  };
  return {
    wrote(seconds, messages, bytes) {
      record("sessionstore.storage.write", seconds, {
        "sessionstore.messages": messages,
        "sessionstore.bytes": bytes,
      });
    },
    synced(seconds) {
      record("sessionstore.storage.sync", seconds, {});
    },
    failed(code: Code) {
      record("sessionstore.storage.failure", 0, {}, status[code]);
    },
  };
}
