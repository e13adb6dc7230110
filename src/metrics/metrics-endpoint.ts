import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

/** The HTTP server of `/metrics`, listening. */
export interface MetricsEndpoint {
  /** The address bound, host:port (the port chosen when the setting asked for 0). */
  address: string;
  /** Stops listening and closes its connections. */
  close(): Promise<void>;
}

/**
 * Serves `registry` in Prometheus's text format at `http://<address>/metrics` (GET or HEAD);
 * every other path is 404. A failure to listen names the address and the setting, as the gRPC
 * listener's does.
 */
export async function serveMetrics(
  address: string,
  registry: Registry,
  log: Logger,
): Promise<MetricsEndpoint> {
  const server = createServer((request, response) => {
    const path = request.url?.split("?")[0];
    if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { "content-type": registry.contentType });
        response.end(request.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        log.error({ err: error }, "could not collect the metrics");
        response.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
      },
    );
  });
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  await listen(server, host, Number(address.slice(colon + 1))).catch((error: unknown) => {
    const reason =
      (error as NodeJS.ErrnoException).code === "EADDRINUSE"
        ? "the address is already in use; pass another --metrics-listen (port 0 picks a free one)"
        : (error as Error).message;
    throw new Error(`cannot serve metrics on ${address}: ${reason}`, { cause: error });
  });
  const { port } = server.address() as AddressInfo;
  const bound = `${address.slice(0, colon)}:${port}`;
  log.info({ address: bound }, `serving Prometheus metrics at http://${bound}/metrics`);
  return {
    address: bound,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: host === "" ? undefined : host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
