import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import type { SessionMeta } from "../../gen/sessionstore/v1/session_store.js";
import { append, loadAll, type TestServer } from "../helpers/test-server.js";
import {
  deleteSession,
  describeEachBackend,
  durableOn,
  expectStatus,
  flush,
  list,
  loadMeta,
  loadPages,
  messages,
  sleep,
  storageOf,
} from "./support.js";

/** Servers whose buffers are written only by Flush and shutdown. */
const DEFAULTS = { flushMessages: 10_000, flushIntervalMs: 60_000 };

/** Creates one session with one message per id, on one stream. */
async function createSessions(server: TestServer, ids: readonly string[]): Promise<void> {
  await append(
    server.client,
    ids.map((sessionId) => ({ sessionId, messages: ['{"hello":1}'] })),
  );
}

/** Every session List returns, following next_page_token, and the size of each page. */
async function listAll(
  server: TestServer,
  request: { pageSize?: number; prefix?: string } = {},
): Promise<{ ids: string[]; pageSizes: number[] }> {
  const ids: string[] = [];
  const pageSizes: number[] = [];
  let pageToken = "";
  do {
    const page = await list(server.client, { ...request, pageToken });
    ids.push(...page.sessions.map((meta) => meta.sessionId));
    pageSizes.push(page.sessions.length);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && pageSizes.length < 1000);
  return { ids, pageSizes };
}

describeEachBackend(
  "LoadMeta",
  (start, backend) => {
    it("is NOT_FOUND for an unknown session", async () => {
      const { client } = await start();
      await expectStatus(loadMeta(client, "ghost"), status.NOT_FOUND, /ghost/);
    });

    it("reports counts with buffered messages included, and timestamps", async () => {
      const { client } = await start();
      const before = Date.now();
      await append(client, [{ sessionId: "m", messages: messages("m", 3) }]);
      const after = Date.now();

      const meta = await loadMeta(client, "m");
      expect(meta).toMatchObject({ sessionId: "m", messageCount: 3, durableCount: 0 });
      expect(meta.agentLoopVersion).not.toBe("");
      expect(meta.createdAtMs).toBeGreaterThanOrEqual(before);
      expect(meta.createdAtMs).toBeLessThanOrEqual(after);
      expect(meta.updatedAtMs).toBeGreaterThanOrEqual(meta.createdAtMs);

      await flush(client, "m");
      expect(await loadMeta(client, "m")).toMatchObject({
        messageCount: 3,
        durableCount: durableOn(backend, 3),
      });
      await sleep(5);
      await append(client, [{ sessionId: "m", messages: messages("m", 1, 3) }]);
      const later = await loadMeta(client, "m");
      expect(later).toMatchObject({ messageCount: 4, durableCount: durableOn(backend, 3) });
      expect(later.updatedAtMs).toBeGreaterThan(meta.updatedAtMs);
    });

    it.skipIf(backend === "memory")(
      "keeps created_at_ms through later appends, flushes and a restart",
      async () => {
        const first = await start();
        await append(first.client, [{ sessionId: "c", messages: messages("c", 1) }]);
        const { createdAtMs } = await loadMeta(first.client, "c");
        await sleep(20);
        await append(first.client, [{ sessionId: "c", messages: messages("c", 1, 1) }]);
        await flush(first.client, "c");
        await sleep(20);
        await append(first.client, [{ sessionId: "c", messages: messages("c", 1, 2) }]);
        await flush(first.client, "c");
        expect((await loadMeta(first.client, "c")).createdAtMs).toBe(createdAtMs);
        await first.stop();

        const second = await start(storageOf(first));
        await sleep(20);
        await append(second.client, [{ sessionId: "c", messages: messages("c", 1, 3) }]);
        await flush(second.client, "c");
        expect(await loadMeta(second.client, "c")).toMatchObject({ createdAtMs, messageCount: 4 });
      },
    );
  },
  { defaults: DEFAULTS },
);

describeEachBackend(
  "List",
  (start, backend) => {
    it("pages 150 sessions sorted by id: 100 by default, then the rest", async () => {
      const server = await start();
      const ids = Array.from({ length: 150 }, (_, index) => `s-${index}`);
      // Half written to files, half only buffered: both kinds are listed, in one order.
      await createSessions(server, ids.slice(0, 75));
      await flush(server.client, "");
      await createSessions(server, ids.slice(75));
      const sorted = [...ids].sort();

      const first = await list(server.client, {});
      expect(first.sessions.map((meta) => meta.sessionId)).toEqual(sorted.slice(0, 100));
      expect(first.nextPageToken).not.toBe("");
      const second = await list(server.client, { pageToken: first.nextPageToken });
      expect(second.sessions.map((meta) => meta.sessionId)).toEqual(sorted.slice(100));
      expect(second.nextPageToken).toBe("");
      expect(first.sessions[0]).toMatchObject<Partial<SessionMeta>>({
        sessionId: "s-0",
        messageCount: 1,
        durableCount: durableOn(backend, 1),
      });
      expect(second.sessions.find((meta) => meta.sessionId === "s-99")).toMatchObject({
        messageCount: 1,
        durableCount: 0,
      });

      const { ids: paged, pageSizes } = await listAll(server, { pageSize: 7 });
      expect(paged).toEqual(sorted);
      expect(pageSizes).toEqual([...Array(21).fill(7), 3]);
    });

    it("respects page_size and visits every session exactly once by page_token", async () => {
      const server = await start();
      // Code-point order, not numeric or case-insensitive order.
      const ids = ["b", "B", "a-10", "a-2", "a-1", "a.b", "a:b", "a@b", "a~b", "a_b", "Z9", "0"];
      await createSessions(server, ids.slice(0, 6));
      await flush(server.client, "");
      await createSessions(server, ids.slice(6));

      const { ids: listed, pageSizes } = await listAll(server, { pageSize: 5 });
      expect(listed).toEqual([...ids].sort());
      expect(pageSizes).toEqual([5, 5, 2]);

      // One more than a page: the token must not skip or repeat across the stored/buffered split.
      const { ids: byOne } = await listAll(server, { pageSize: 1 });
      expect(byOne).toEqual([...ids].sort());
    });

    it("clamps page_size to 1000", async () => {
      const server = await start();
      const ids = Array.from({ length: 1001 }, (_, index) => `c-${String(index).padStart(4, "0")}`);
      await createSessions(server, ids);

      const page = await list(server.client, { pageSize: 5000 });
      expect(page.sessions).toHaveLength(1000);
      expect(page.nextPageToken).not.toBe("");
      const rest = await list(server.client, { pageSize: 5000, pageToken: page.nextPageToken });
      expect(rest.sessions.map((meta) => meta.sessionId)).toEqual(["c-1000"]);
      expect(rest.nextPageToken).toBe("");
    });

    it("filters by prefix", async () => {
      const server = await start();
      await createSessions(server, ["agent-1", "agent-2", "agent-10", "agentx", "other-1"]);
      await flush(server.client, "agent-1");
      await createSessions(server, ["agent-3"]);

      const { ids } = await listAll(server, { prefix: "agent-", pageSize: 2 });
      expect(ids).toEqual(["agent-1", "agent-10", "agent-2", "agent-3"]);
      expect((await list(server.client, { prefix: "nobody" })).sessions).toEqual([]);
    });

    it("lists sessions that are only buffered, with their counts", async () => {
      const server = await start();
      await append(server.client, [{ sessionId: "buffered", messages: messages("b", 2) }]);
      const { sessions } = await list(server.client, {});
      expect(sessions).toHaveLength(1);
      expect(sessions[0]).toMatchObject({
        sessionId: "buffered",
        messageCount: 2,
        durableCount: 0,
      });
    });

    it("rejects a page_token it did not issue", async () => {
      const server = await start();
      await expectStatus(
        list(server.client, { pageToken: "not a token!" }),
        status.INVALID_ARGUMENT,
        /page_token/,
      );
    });
  },
  { defaults: DEFAULTS },
);

describeEachBackend(
  "Delete",
  (start, backend) => {
    it("deletes a stored session with its buffer, and it restarts at seq 0", async () => {
      const server = await start();
      const { client } = server;
      await append(client, [{ sessionId: "d", messages: messages("old", 3) }]);
      await flush(client, "d");
      await append(client, [{ sessionId: "d", messages: messages("old", 2, 3) }]);

      expect(await deleteSession(client, "d")).toEqual({ existed: true });

      expect(await loadPages(client, "d")).toEqual([]);
      await expectStatus(loadMeta(client, "d"), status.NOT_FOUND);
      expect((await list(client, {})).sessions).toEqual([]);
      // The deleted buffer is not written later either.
      expect(await flush(client, "")).toEqual({ flushed: 0, failures: [] });

      const [ack] = await append(client, [{ sessionId: "d", messages: messages("new", 1) }]);
      expect(ack).toMatchObject({ firstSeq: 0, nextSeq: 1 });
      expect((await loadAll(client, "d")).messages).toEqual(messages("new", 1));
      await flush(client, "d");
      expect(await loadMeta(client, "d")).toMatchObject({
        messageCount: 1,
        durableCount: durableOn(backend, 1),
      });
    });

    it("deletes a session that is only buffered", async () => {
      const server = await start();
      const { client } = server;
      await append(client, [{ sessionId: "b", messages: messages("b", 2) }]);

      expect(await deleteSession(client, "b")).toEqual({ existed: true });

      await expectStatus(loadMeta(client, "b"), status.NOT_FOUND);
      expect(await loadPages(client, "b")).toEqual([]);
      expect((await list(client, {})).sessions).toEqual([]);
      if (backend === "memory") return;
      await server.stop();
      // Shutdown writes every buffer: the deleted one must not come back.
      const restarted = await start(storageOf(server));
      await expectStatus(loadMeta(restarted.client, "b"), status.NOT_FOUND);
    });

    it("reports existed=false for an unknown session, and a second delete", async () => {
      const server = await start();
      expect(await deleteSession(server.client, "unknown")).toEqual({ existed: false });
      await append(server.client, [{ sessionId: "twice", messages: messages("t", 1) }]);
      await flush(server.client, "twice");
      expect(await deleteSession(server.client, "twice")).toEqual({ existed: true });
      expect(await deleteSession(server.client, "twice")).toEqual({ existed: false });
    });

    it.skipIf(backend === "memory")("is not undone by a restart", async () => {
      const first = await start();
      await createSessions(first, ["keep", "drop"]);
      await flush(first.client, "");
      expect(await deleteSession(first.client, "drop")).toEqual({ existed: true });
      await first.stop();

      const second = await start(storageOf(first));
      expect((await list(second.client, {})).sessions.map((meta) => meta.sessionId)).toEqual([
        "keep",
      ]);
      await expectStatus(loadMeta(second.client, "drop"), status.NOT_FOUND);
    });
  },
  { defaults: DEFAULTS },
);
