import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics/metrics.js";
import { grpcTypeOf, metricsInterceptor } from "./server/metrics-interceptor.js";
import { type RunningServer, startServer } from "./server/server.js";
import { SessionService } from "./sessions/session-service.js";
import { createStorage } from "./store/create-storage.js";

/** The running service: its gRPC server, and where its metrics are served, if they are. */
export interface RunningService extends RunningServer {
  /** The address of the metrics endpoint, host:port (with `--metrics-listen`). */
  metricsAddress?: string;
}

/**
 * The whole service as `sessionstore serve` runs it: the configured storage backend, opened,
 * the session semantics over it, and the gRPC server over those; with `--metrics-listen`, the
 * metrics endpoint beside it, stopped after the server.
 */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const metrics = await startMetricsIfAsked(config, log);
  try {
    const storage = await createStorage(config, log, metrics?.service);
    await storage.open();
    const sessions = new SessionService(storage, config, log, metrics?.service);
    metrics?.service.observe({
      storage: () => storage.levels(),
      watchers: () => sessions.watcherCount,
    });
    const server = await startServer(
      sessions,
      config,
      log,
      metrics ? [metricsInterceptor(metrics.rpc)] : [],
    );
    for (const method of server.methods) metrics?.rpc.initialize(method.path, grpcTypeOf(method));
    let stopped: Promise<void> | undefined;
    return {
      ...server,
      ...(metrics ? { metricsAddress: metrics.endpoint.address } : {}),
      shutdown: () => {
        stopped ??= server.shutdown().finally(() => metrics?.endpoint.close());
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
