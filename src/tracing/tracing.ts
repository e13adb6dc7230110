import { DiagLogLevel, diag, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { Logger } from "pino";
import { packageVersion } from "../version.js";

/** OpenTelemetry's tracing, set up for the whole process. */
export interface Tracing {
  /** The tracer of the server's spans. */
  tracer: Tracer;
  /** Ends tracing: exports the spans not yet sent. */
  shutdown(): Promise<void>;
}

/**
 * Registers, for the whole process, a tracer provider whose spans go to `processors`, with the
 * AsyncLocalStorage context manager (a span stays current across awaits, timers and I/O
 * callbacks) and the W3C trace context and baggage propagators. The resource is service.name
 * `sessionstore` and the package's version, then what OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES say.
 */
export function registerTracing(processors: SpanProcessor[]): Tracing {
  const version = packageVersion();
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: "sessionstore",
        [ATTR_SERVICE_VERSION]: version,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
  provider.register();
  return {
    tracer: provider.getTracer("sessionstore", version),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Tracing as the OTEL_* variables configure it: spans batched (OTEL_BSP_*) and sent by OTLP over
 * HTTP with protobuf to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT plus
 * /v1/traces (headers, timeout and sampler from their variables too).
 */
export function startOtlpTracing(): Tracing {
  return registerTracing([new BatchSpanProcessor(new OTLPTraceExporter())]);
}

/**
 * Sends OpenTelemetry's own warnings and errors (a collector that cannot be reached, spans
 * dropped) to `log` at warn, marked `component: "opentelemetry"`, instead of the console.
 */
export function logOpenTelemetryTo(log: Logger): void {
  const otelLog = log.child({ component: "opentelemetry" });
  const write = (message: string, ...args: unknown[]) =>
    otelLog.warn({ details: args.map(String) }, message);
  const ignore = () => {};
  diag.setLogger(
    { error: write, warn: write, info: ignore, debug: ignore, verbose: ignore },
    DiagLogLevel.WARN,
  );
}
