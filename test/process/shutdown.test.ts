import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type ClientReadableStream,
  credentials,
  makeGenericClientConstructor,
  status,
} from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import { startChildServer } from "../helpers/child-server.js";
import {
  append,
  appendStream,
  makeTempDir,
  readLikeMotosan,
  startTestServer,
  type TestServer,
  unaryRpcs,
} from "../helpers/test-server.js";

const HealthClient = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");

describe("graceful shutdown", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("SIGTERM writes every buffered message to complete files and exits 0", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startChildServer([
      "--data-dir",
      dataDir,
      "--flush-messages",
      "1000",
      "--flush-interval-ms",
      "600000",
    ]);
    cleanups.push(async () => server.process.kill("SIGKILL"));
    const sessions = ["s-1", "s-2", "s-3"];
    const sent = new Map(
      sessions.map((id) => [id, Array.from({ length: 7 }, (_, i) => `{"id":"${id}","i":${i}}`)]),
    );
    await append(
      server.client,
      sessions.map((sessionId) => ({ sessionId, messages: sent.get(sessionId) })),
    );
    const meta = await unaryRpcs(server.client).loadMeta({ sessionId: "s-1" });
    expect(meta.meta?.messageCount).toBe(7);
    expect(meta.meta?.durableCount).toBe(0); // still only buffered
    server.client.close();

    server.process.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    for (const sessionId of sessions) {
      const text = await readFile(join(dataDir, `${sessionId}.jsonl`), "utf8");
      expect(text.endsWith("\n")).toBe(true);
      const [header, ...lines] = text.slice(0, -1).split("\n");
      expect(JSON.parse(header as string)).toMatchObject({
        session_id: sessionId,
        message_count: 7,
      });
      expect(lines).toEqual(sent.get(sessionId));
      expect(readLikeMotosan(text)).toHaveLength(7);
    }
    expect(
      server.logs.some((entry) => entry.msg === "shutting down" && entry.signal === "SIGTERM"),
    ).toBe(true);
  });

  describe("in process", () => {
    let server: TestServer;
    afterEach(async () => server.close());

    it("turns health NOT_SERVING, ends open streams with UNAVAILABLE after their acks, and flushes", async () => {
      server = await startTestServer({ flushMessages: 1000, flushIntervalMs: 600_000 });
      const health = new HealthClient(server.server.address, credentials.createInsecure());
      cleanups.push(async () => health.close());
      const statuses: string[] = [];
      const watchHealth = health.watch as (request: {
        service: string;
      }) => ClientReadableStream<{ status: string }>;
      const watch = watchHealth.call(health, { service: "sessionstore.v1.SessionStore" });
      watch.on("data", (response) => statuses.push(response.status));
      watch.on("error", () => undefined);

      const stream = server.client.append();
      const acks: number[] = [];
      stream.on("data", (ack: { nextSeq: number }) => acks.push(ack.nextSeq));
      const ended = new Promise<{ code?: number; details?: string }>((resolve) => {
        stream.on("error", resolve);
        stream.on("end", () => resolve({}));
      });
      stream.write({
        sessionId: "open",
        messages: ['{"a":1}', '{"a":2}'],
        sync: false,
        labels: {},
      });
      await expect.poll(() => acks).toEqual([2]);
      await expect.poll(() => statuses).toEqual(["SERVING"]);

      await server.server.shutdown();

      const end = await ended;
      expect(end.code).toBe(status.UNAVAILABLE);
      expect(end.details).toContain("shutting down");
      await expect.poll(() => statuses).toEqual(["SERVING", "NOT_SERVING"]);
      const text = await readFile(join(server.dataDir, "open.jsonl"), "utf8");
      expect(text.split("\n").slice(1, 3)).toEqual(['{"a":1}', '{"a":2}']);
      const refused = await appendStream(server.client, [
        { sessionId: "late", messages: ['{"b":1}'] },
      ]);
      expect(refused.error?.code).toBe(status.UNAVAILABLE);
    });
  });
});
