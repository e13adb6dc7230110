import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import { samplesOf, scrape, sumOf } from "../helpers/metrics.js";
import { append, appendStream, loadAll, type TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, signingKey, token } from "../helpers/tokens.js";
import { damageRecord } from "../store/jsonl-support.js";
import {
  describeEachBackend,
  expectStatus,
  expectStreamError,
  flush,
  loadMeta,
  messages,
  PERSISTENT_BACKENDS,
  watch,
} from "./support.js";

/** A session id that must never appear in a scrape. */
const SESSION = "metrics-session-4f2b9c";

function metricsAddress(server: TestServer): string {
  const address = server.server.metricsAddress;
  if (!address) throw new Error("the server serves no metrics");
  return address;
}

const method = (grpc_method: string) => ({
  grpc_service: "sessionstore.v1.SessionStore",
  grpc_method,
});

describeEachBackend(
  "Metrics",
  (start, backend) => {
    it("counts every call as go-grpc-prometheus does, and the store's own series, without session ids", async () => {
      const server = await start();
      const sent = messages("m", 6);
      await append(server.client, [
        { sessionId: SESSION, messages: sent.slice(0, 2) },
        { sessionId: SESSION, messages: sent.slice(2, 5), sync: true },
        { sessionId: SESSION, messages: sent.slice(5) },
      ]);
      expect((await loadAll(server.client, SESSION)).messages).toEqual(sent);
      await loadMeta(server.client, SESSION);
      await flush(server.client, SESSION);
      const bad = await appendStream(server.client, [{ sessionId: SESSION, messages: ["{"] }]);
      expectStreamError(bad.error, status.INVALID_ARGUMENT);
      await expectStatus(loadMeta(server.client, "no-such-session"), status.NOT_FOUND);

      const scraped = await scrape(metricsAddress(server));
      // Every call finished: each method's started equals its handled, over all codes.
      for (const { labels, value } of samplesOf(scraped, "grpc_server_started_total")) {
        expect(sumOf(scraped, "grpc_server_handled_total", labels), labels.grpc_method).toBe(value);
      }
      const appendCalls = { ...method("Append"), grpc_type: "bidi_stream" };
      expect(sumOf(scraped, "grpc_server_started_total", appendCalls)).toBe(2);
      // grpc-go's names of the codes, as go-grpc-prometheus labels them.
      expect(sumOf(scraped, "grpc_server_handled_total", { ...appendCalls, grpc_code: "OK" })).toBe(
        1,
      );
      expect(
        sumOf(scraped, "grpc_server_handled_total", {
          ...appendCalls,
          grpc_code: "InvalidArgument",
        }),
      ).toBe(1);
      expect(
        sumOf(scraped, "grpc_server_handled_total", {
          ...method("LoadMeta"),
          grpc_type: "unary",
          grpc_code: "NotFound",
        }),
      ).toBe(1);
      // Messages on the streams: four requests in, three acks out; one Load request, one page.
      expect(sumOf(scraped, "grpc_server_msg_received_total", appendCalls)).toBe(4);
      expect(sumOf(scraped, "grpc_server_msg_sent_total", appendCalls)).toBe(3);
      const loads = { ...method("Load"), grpc_type: "server_stream" };
      expect(sumOf(scraped, "grpc_server_msg_received_total", loads)).toBe(1);
      expect(sumOf(scraped, "grpc_server_msg_sent_total", loads)).toBe(1);
      expect(scraped.types.get("grpc_server_handling_seconds")).toBe("histogram");
      const buckets = samplesOf(scraped, "grpc_server_handling_seconds_bucket", appendCalls);
      expect(buckets.map((bucket) => bucket.labels.le)).toEqual([
        ...["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"],
        "+Inf",
      ]);
      expect(buckets.at(-1)?.value).toBe(2);
      expect(sumOf(scraped, "grpc_server_handling_seconds_count", appendCalls)).toBe(2);
      // Health and reflection are counted too, from zero before their first call.
      expect(
        samplesOf(scraped, "grpc_server_started_total", {
          grpc_service: "grpc.health.v1.Health",
          grpc_method: "Check",
        }),
      ).toHaveLength(1);

      expect(sumOf(scraped, "sessionstore_messages_appended_total")).toBe(6);
      expect(sumOf(scraped, "sessionstore_appended_bytes_total")).toBe(sent.join("").length);
      expect(sumOf(scraped, "sessionstore_storage_write_seconds_count")).toBeGreaterThan(0);
      expect(sumOf(scraped, "sessionstore_storage_sync_seconds_count")).toBeGreaterThan(0);
      expect(sumOf(scraped, "sessionstore_buffered_bytes")).toBe(0);
      expect(sumOf(scraped, "sessionstore_open_sessions")).toBe(backend === "jsonl" ? 1 : 0);
      expect(sumOf(scraped, "sessionstore_storage_errors_total")).toBe(0);
      // prom-client's default process metrics.
      expect(sumOf(scraped, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
      expect(samplesOf(scraped, "nodejs_eventloop_lag_seconds")).toHaveLength(1);

      expect(scraped.text).not.toContain(SESSION);
      expect(scraped.text).not.toContain("no-such-session");
      expect(scraped.text).not.toMatch(/tenant=/);
    });

    it("reports buffered bytes and active watchers as they are at the scrape", async () => {
      const server = await start({ flushMessages: 1000, flushIntervalMs: 60_000 });
      const buffered = messages("b", 3);
      await append(server.client, [{ sessionId: SESSION, messages: buffered }]);
      const watcher = watch(server.client, SESSION);
      await expect.poll(() => watcher.received).toEqual(buffered);
      const before = await scrape(metricsAddress(server));
      expect(sumOf(before, "sessionstore_active_watchers")).toBe(1);
      if (backend === "jsonl") {
        expect(sumOf(before, "sessionstore_buffered_bytes")).toBe(buffered.join("").length);
      }
      watcher.call.cancel();
      await flush(server.client, SESSION);
      await expect
        .poll(async () =>
          sumOf(await scrape(metricsAddress(server)), "sessionstore_active_watchers"),
        )
        .toBe(0);
      const after = await scrape(metricsAddress(server));
      expect(sumOf(after, "sessionstore_buffered_bytes")).toBe(0);
      expect(
        sumOf(after, "grpc_server_handled_total", { ...method("Watch"), grpc_code: "Canceled" }),
      ).toBe(1);
    });

    it("labels the appended counters with the tenant only with --metrics-per-tenant", async () => {
      const server = await start({ metricsPerTenant: true });
      await append(server.client, [{ sessionId: SESSION, messages: messages("t", 2) }]);
      const scraped = await scrape(metricsAddress(server));
      // A server without authentication has the one tenant "".
      expect(samplesOf(scraped, "sessionstore_messages_appended_total")).toEqual([
        { name: "sessionstore_messages_appended_total", labels: { tenant: "" }, value: 2 },
      ]);
      expect(samplesOf(scraped, "sessionstore_appended_bytes_total")[0]?.labels).toEqual({
        tenant: "",
      });
    });

    it("labels them with the caller's tenant under --auth jwt", async () => {
      const key = await signingKey();
      const server = await start({
        ...jwtSettings(await JwksFile.create([key])),
        metricsPerTenant: true,
      });
      for (const [tenant, count] of [
        ["team-a", 2],
        ["team-b", 1],
      ] as const) {
        const client = new SessionStoreClient(server.server.address, {
          token: await token(key, { tenant }),
          retry: { maxAttempts: 1 },
        });
        await client.append(
          SESSION,
          Array.from({ length: count }, (_, n) => ({ n })),
        );
        client.close();
      }
      const scraped = await scrape(metricsAddress(server));
      expect(sumOf(scraped, "sessionstore_messages_appended_total", { tenant: "team-a" })).toBe(2);
      expect(sumOf(scraped, "sessionstore_messages_appended_total", { tenant: "team-b" })).toBe(1);
      expect(scraped.text).not.toContain(SESSION);
    });

    it("serves only /metrics", async () => {
      const server = await start();
      const response = await fetch(`http://${metricsAddress(server)}/other`);
      expect(response.status).toBe(404);
    });
  },
  { backends: PERSISTENT_BACKENDS, defaults: { metricsListen: "127.0.0.1:0" } },
);

describeEachBackend(
  "Metrics of storage errors",
  (start) => {
    it("counts damage found in a session file as a DATA_LOSS storage error", async () => {
      const server = await start();
      await append(server.client, [{ sessionId: SESSION, messages: messages("d", 3), sync: true }]);
      await damageRecord(server.dataDir, SESSION, 1);
      await expectStatus(loadAll(server.client, SESSION), status.DATA_LOSS);
      const scraped = await scrape(metricsAddress(server));
      expect(sumOf(scraped, "sessionstore_storage_errors_total", { code: "DATA_LOSS" })).toBe(1);
      expect(scraped.text).not.toContain(SESSION);
    });
  },
  { backends: ["jsonl"], defaults: { metricsListen: "127.0.0.1:0" } },
);

describeEachBackend(
  "Metrics of retention",
  (start) => {
    it("shows the sweeper's work: sweeps, trimmed messages and deleted idle sessions", async () => {
      const server = await start({
        retentionMaxMessages: 2,
        sessionIdleTtlMs: 1500,
        retentionSweepIntervalMs: 100,
      });
      await append(server.client, [{ sessionId: "kept", messages: messages("k", 5), sync: true }]);
      await expect.poll(async () => (await loadMeta(server.client, "kept")).firstSeq).toBe(3);
      expect((await loadAll(server.client, "kept")).messages).toEqual(messages("k", 2, 3));
      await expect
        .poll(
          () =>
            loadMeta(server.client, "kept").then(
              () => "there",
              () => "gone",
            ),
          {
            timeout: 5000,
          },
        )
        .toBe("gone");
      const scraped = await scrape(metricsAddress(server));
      expect(sumOf(scraped, "sessionstore_retention_sweeps_total", {})).toBeGreaterThan(0);
      expect(sumOf(scraped, "sessionstore_retention_messages_trimmed_total", {})).toBe(3);
      expect(sumOf(scraped, "sessionstore_retention_sessions_deleted_total", {})).toBe(1);
    });
  },
  { defaults: { metricsListen: "127.0.0.1:0" } },
);
