import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthClient } from "../helpers/health.js";
import { type PostgresCluster, startPostgresCluster, testDatabases } from "../helpers/postgres.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import {
  append,
  appendStream,
  loadAll,
  startTestServer,
  type TestServer,
} from "../helpers/test-server.js";
import { expectStatus, loadMeta, messages } from "../integration/support.js";

/**
 * PostgreSQL stopped under a running server and started again: calls fail fast with UNAVAILABLE
 * instead of hanging, health says NOT_SERVING while it is down and SERVING once it is back, and
 * nothing acknowledged is lost. The cluster is this test's own (stopping the shared one would
 * disturb the other suites).
 */
describe("the database going down and coming back", skipWithReason(testDatabases().missing), () => {
  let cluster: PostgresCluster;
  let server: TestServer;
  let health: ReturnType<typeof healthClient>;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    server = await startTestServer({
      storage: "postgres",
      databaseUrl: await cluster.createDatabase("outage"),
      databaseTimeoutMs: 1000,
    });
    health = healthClient(server.server.address);
  }, 60_000);

  afterAll(async () => {
    health?.close();
    await server?.close();
    await cluster?.destroy();
  });

  it("fails calls fast with UNAVAILABLE, reports NOT_SERVING, and serves again with everything acknowledged", async () => {
    const durable = messages("d", 5);
    await append(server.client, [{ sessionId: "kept", messages: durable, sync: true }]);
    await append(server.client, [{ sessionId: "kept", messages: messages("b", 2) }]);
    expect(await health.check()).toEqual({ status: "SERVING" });

    await cluster.stop();
    const started = Date.now();
    const failed = await appendStream(server.client, [
      { sessionId: "kept", messages: messages("x", 1), sync: true },
    ]);
    expect(failed.error?.code).toBe(status.UNAVAILABLE);
    expect(failed.error?.details).toMatch(/database/);
    await expectStatus(loadMeta(server.client, "kept"), status.UNAVAILABLE);
    // Bounded by --database-timeout-ms, not hung.
    expect(Date.now() - started).toBeLessThan(5000);
    await expect.poll(() => health.check(), { timeout: 5000 }).toEqual({ status: "NOT_SERVING" });

    await cluster.start();
    await expect.poll(() => health.check(), { timeout: 10_000 }).toEqual({ status: "SERVING" });
    const loaded = await loadAll(server.client, "kept");
    expect(loaded.messages.slice(0, 7)).toEqual([...durable, ...messages("b", 2)]);
    // The request that failed while the database was down said whether it may be stored; it
    // is there at most once.
    expect(loaded.messages.slice(7).length).toBeLessThanOrEqual(1);
    const [ack] = await append(server.client, [
      { sessionId: "kept", messages: messages("after", 1), sync: true },
    ]);
    expect(ack?.firstSeq).toBe(loaded.messages.length);
  }, 60_000);
});
