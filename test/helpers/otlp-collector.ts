import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A stand-in for an OpenTelemetry collector: an HTTP server on 127.0.0.1 keeping what is posted. */
export interface OtlpCollector {
  /** `http://127.0.0.1:<port>`, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  /** Each request's path, content type and body (OTLP/HTTP protobuf), in order. */
  received: { path: string; contentType: string; body: Buffer }[];
  close(): Promise<void>;
}

/** Starts a collector that answers every POST with 200 and an empty export response. */
export async function startOtlpCollector(): Promise<OtlpCollector> {
  const received: OtlpCollector["received"] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({
        path: request.url ?? "",
        contentType: request.headers["content-type"] ?? "",
        body: Buffer.concat(chunks),
      });
      response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
