import type { ServerInterceptor } from "@grpc/grpc-js";
import type { Tracer } from "@opentelemetry/api";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics/metrics.js";
import { grpcTypeOf, metricsInterceptor } from "./server/metrics-interceptor.js";
import { type RunningServer, startServer } from "./server/server.js";
import { RetentionSweeper } from "./sessions/retention.js";
import { SessionService } from "./sessions/session-service.js";
import { createStorage } from "./store/create-storage.js";
import { allOf, type StorageEvents } from "./store/storage-events.js";

/** What the process set up around the service. */
export interface ServiceOptions {
  /** Traces every call and storage write with it (OpenTelemetry, registered by the caller). */
  tracer?: Tracer;
}

/** The running service: its gRPC server, and where its metrics are served, if they are. */
export interface RunningService extends RunningServer {
  /** The address of the metrics endpoint, host:port (with `--metrics-listen`). */
  metricsAddress?: string;
}

/**
 * The whole service as `sessionstore serve` runs it: the configured storage backend, opened,
 * the session semantics over it, and the gRPC server over those; with `--metrics-listen`, the
 * metrics endpoint beside it, stopped after the server; with a tracer, spans of every call and
 * of the storage's writes. Neither costs anything when it is off: prom-client and the tracing
 * code load only when asked for.
 */
export async function startService(
  config: Config,
  log: Logger,
  options: ServiceOptions = {},
): Promise<RunningService> {
  const metrics = await startMetricsIfAsked(config, log);
  try {
    const tracing = options.tracer && (await tracingObservers(options.tracer));
    const storageEvents = allOf([metrics?.service, tracing?.storage].filter(isDefined));
    const storage = await createStorage(config, log, storageEvents);
    await storage.open();
    const sessions = new SessionService(storage, config, log, metrics?.service);
    metrics?.service.observe({
      storage: () => storage.levels(),
      watchers: () => sessions.watcherCount,
    });
    const interceptors = [tracing?.interceptor, metrics && metricsInterceptor(metrics.rpc)];
    const server = await startServer(sessions, config, log, interceptors.filter(isDefined));
    for (const method of server.methods) metrics?.rpc.initialize(method.path, grpcTypeOf(method));
    const sweeper = new RetentionSweeper(storage, config, log, metrics?.service);
    sweeper.start();
    let stopped: Promise<void> | undefined;
    return {
      ...server,
      ...(metrics ? { metricsAddress: metrics.endpoint.address } : {}),
      shutdown: () => {
        stopped ??= sweeper
          .stop()
          .then(() => server.shutdown())
          .finally(() => metrics?.endpoint.close());
        return stopped;
      },
    };
  } catch (error) {
    await metrics?.endpoint.close();
    throw error;
  }
}

/** The metrics, when asked for; prom-client is loaded only then. */
async function startMetricsIfAsked(config: Config, log: Logger): Promise<Metrics | undefined> {
  if (config.metricsListen === "") return undefined;
  const { startMetrics } = await import("./metrics/metrics.js");
  return startMetrics(config, log);
}

/** The span makers of calls and of storage work, loaded only with tracing on. */
async function tracingObservers(
  tracer: Tracer,
): Promise<{ interceptor: ServerInterceptor; storage: StorageEvents }> {
  const [{ tracingInterceptor }, { storageSpans }] = await Promise.all([
    import("./server/tracing-interceptor.js"),
    import("./tracing/storage-spans.js"),
  ]);
  return { interceptor: tracingInterceptor(tracer), storage: storageSpans(tracer) };
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}
