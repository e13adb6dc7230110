import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { Config } from "../config.js";
import { type MetricsEndpoint, serveMetrics } from "./metrics-endpoint.js";
import { RpcMetrics } from "./rpc-metrics.js";
import { ServiceMetrics } from "./service-metrics.js";

/** The server's metrics, served at `--metrics-listen`. */
export interface Metrics {
  /** The gRPC server series, counted by the metrics interceptor. */
  rpc: RpcMetrics;
  /** The store's own series, fed as the storage's and the session layer's observer. */
  service: ServiceMetrics;
  endpoint: MetricsEndpoint;
}

/**
 * A registry of its own (tests run several servers in one process) with prom-client's default
 * process metrics, the gRPC and the store's series, served over HTTP from now on.
 */
export async function startMetrics(config: Config, log: Logger): Promise<Metrics> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rpc = new RpcMetrics(registry);
  const service = new ServiceMetrics(registry, { perTenant: config.metricsPerTenant });
  const endpoint = await serveMetrics(config.metricsListen, registry, log);
  return { rpc, service, endpoint };
}
