import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { Metadata } from "@grpc/grpc-js";
import { afterEach, expect, it } from "vitest";
import { startChildServer } from "../helpers/child-server.js";
import { startOtlpCollector } from "../helpers/otlp-collector.js";
import { makeTempDir, unary } from "../helpers/test-server.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it("exports spans by OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, in the client's trace, and logs the trace id", async () => {
  const collector = await startOtlpCollector();
  cleanups.push(() => collector.close());
  const dataDir = await makeTempDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startChildServer(["--data-dir", dataDir, "--log-level", "debug"], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_SERVICE_NAME: "sessionstore-under-test",
    // Export within a tenth of a second rather than the default five.
    OTEL_BSP_SCHEDULE_DELAY: "100",
  });
  cleanups.push(async () => server.process.kill("SIGKILL"));
  const traceId = randomBytes(16).toString("hex");
  const metadata = new Metadata();
  metadata.set("traceparent", `00-${traceId}-${randomBytes(8).toString("hex")}-01`);
  await unary((request, callback) => server.client.flush(request, metadata, callback), {
    sessionId: "",
  });

  // OTLP's protobuf holds the trace id as its 16 bytes, and names as UTF-8.
  const traceIdBytes = Buffer.from(traceId, "hex");
  await expect
    .poll(() => collector.received.some(({ body }) => body.includes(traceIdBytes)), {
      timeout: 10_000,
    })
    .toBe(true);
  const exported = collector.received.find(({ body }) => body.includes(traceIdBytes));
  expect(exported?.path).toBe("/v1/traces");
  expect(exported?.contentType).toBe("application/x-protobuf");
  expect(exported?.body.includes("sessionstore.v1.SessionStore/Flush")).toBe(true);
  expect(exported?.body.includes("sessionstore-under-test")).toBe(true);
  expect(server.logs.find((line) => line.msg === "rpc finished")?.trace_id).toBe(traceId);

  server.client.close();
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);
});
