import { context, trace } from "@opentelemetry/api";

/**
 * The ids of the span current where a line is logged, as fields of the line (a pino mixin):
 * `trace_id` and `span_id`, or none outside a traced call.
 */
export function traceIdsOfCurrentSpan(): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
