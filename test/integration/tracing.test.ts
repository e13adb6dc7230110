import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { pino } from "pino";
import { afterAll, afterEach, expect, it } from "vitest";
import { AppendRequest, type AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { traceIdsOfCurrentSpan } from "../../src/tracing/trace-ids.js";
import { registerTracing } from "../../src/tracing/tracing.js";
import type { TestServer } from "../helpers/test-server.js";
import { describeEachBackend, messages } from "./support.js";

const exporter = new InMemorySpanExporter();
const tracing = registerTracing([new SimpleSpanProcessor(exporter)]);
afterEach(() => exporter.reset());
afterAll(async () => {
  await tracing.shutdown();
  // The API's globals belong to this file: leave none registered for the next one.
  trace.disable();
  context.disable();
  propagation.disable();
});

/** A client's trace context, as a traceparent header carries it. */
function clientTrace(): { traceId: string; spanId: string; metadata: Metadata } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  const metadata = new Metadata();
  metadata.set("traceparent", `00-${traceId}-${spanId}-01`);
  metadata.set("tracestate", "vendor=opaque");
  return { traceId, spanId, metadata };
}

/** One Append stream with `metadata`: its acks, or the error it ended with. */
function appendWith(
  server: TestServer,
  metadata: Metadata,
  requests: { sessionId: string; messages: string[]; sync: boolean }[],
): Promise<{ acks: AppendResponse[]; error?: ServiceError }> {
  return new Promise((resolve) => {
    const stream = server.client.append(metadata);
    const acks: AppendResponse[] = [];
    stream.on("data", (ack: AppendResponse) => acks.push(ack));
    stream.on("error", (error: ServiceError) => resolve({ acks, error }));
    stream.on("end", () => resolve({ acks }));
    for (const request of requests) stream.write(AppendRequest.fromPartial(request));
    stream.end();
  });
}

function spansOfTrace(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
}

describeEachBackend(
  "Tracing",
  (start) => {
    it("continues the client's traceparent in a SERVER span, with the storage's writes as its children", async () => {
      const server = await start({}, { tracer: tracing.tracer });
      const { traceId, spanId, metadata } = clientTrace();
      const { error } = await appendWith(server, metadata, [
        { sessionId: "traced", messages: messages("t", 3), sync: true },
      ]);
      expect(error).toBeUndefined();
      await expect
        .poll(() => spansOfTrace(traceId).map((span) => span.name))
        .toContain("sessionstore.v1.SessionStore/Append");
      const spans = spansOfTrace(traceId);
      const rpc = spans.find((span) => span.kind === SpanKind.SERVER) as ReadableSpan;
      expect(rpc.name).toBe("sessionstore.v1.SessionStore/Append");
      expect(rpc.parentSpanContext?.spanId).toBe(spanId);
      expect(rpc.spanContext().traceState?.get("vendor")).toBe("opaque");
      expect(rpc.attributes).toMatchObject({
        "rpc.system": "grpc",
        "rpc.service": "sessionstore.v1.SessionStore",
        "rpc.method": "Append",
        "rpc.grpc.status_code": status.OK,
      });
      expect(rpc.status.code).toBe(SpanStatusCode.UNSET);
      const storage = spans.filter((span) => span.name.startsWith("sessionstore.storage."));
      expect(storage.map((span) => span.name)).toContain("sessionstore.storage.write");
      for (const span of storage) {
        expect(span.parentSpanContext?.spanId).toBe(rpc.spanContext().spanId);
      }
      const write = storage.find((span) => span.name === "sessionstore.storage.write");
      expect(write?.attributes["sessionstore.messages"]).toBe(3);
    });

    it("gives a failed call's span an error status and its code", async () => {
      const server = await start({}, { tracer: tracing.tracer });
      const { traceId, metadata } = clientTrace();
      const { error } = await appendWith(server, metadata, [
        { sessionId: "traced", messages: ["not json"], sync: false },
      ]);
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      await expect.poll(() => spansOfTrace(traceId)).toHaveLength(1);
      const [rpc] = spansOfTrace(traceId);
      expect(rpc?.attributes["rpc.grpc.status_code"]).toBe(status.INVALID_ARGUMENT);
      expect(rpc?.status.code).toBe(SpanStatusCode.ERROR);
      expect(rpc?.status.message).toContain("not valid JSON");
    });

    it("puts the trace id of the call in its log lines", async () => {
      const lines = new PassThrough();
      const logged: Record<string, unknown>[] = [];
      lines.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n").filter(Boolean))
          logged.push(JSON.parse(line));
      });
      const log = pino({ level: "debug", mixin: traceIdsOfCurrentSpan }, lines);
      const server = await start({ logLevel: "debug" }, { tracer: tracing.tracer, log });
      const { traceId, metadata } = clientTrace();
      await appendWith(server, metadata, [
        { sessionId: "logged", messages: messages("l", 1), sync: false },
      ]);
      await expect
        .poll(() => logged.find((line) => line.msg === "rpc finished")?.trace_id)
        .toBe(traceId);
      expect(
        logged.find((line) => line.msg === "sessionstore listening")?.trace_id,
      ).toBeUndefined();
    });
  },
  { backends: ["jsonl", "postgres"] },
);
