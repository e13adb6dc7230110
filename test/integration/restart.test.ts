import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import type { SessionMeta } from "../../gen/sessionstore/v1/session_store.js";
import {
  append,
  loadAll,
  makeTempDir,
  readLikeMotosan,
  type TestServer,
} from "../helpers/test-server.js";
import {
  flush,
  list,
  loadMeta,
  messages,
  readSessionFile,
  serversClosedAfterEach,
  sessionFilePath,
} from "./support.js";

const startServer = serversClosedAfterEach({ flushMessages: 10_000, flushIntervalMs: 60_000 });

const STORED = [
  '{"id":12345678901234567890,"text":"caf\\u00e9 \\/ 🦀","price":1.50}',
  '{ "spaced" : true }',
  ...messages("s", 4),
];

/** What each session holds after the first server's writes. */
const EXPECTED = {
  buffered: messages("b", 2),
  mixed: messages("m", 5),
  stored: STORED,
  synced: messages("y", 3),
};

async function expectServes(server: TestServer, expected: Record<string, string[]>) {
  for (const [sessionId, log] of Object.entries(expected)) {
    expect((await loadAll(server.client, sessionId)).messages, sessionId).toEqual(log);
    expect(await loadMeta(server.client, sessionId), sessionId).toMatchObject({
      messageCount: log.length,
      durableCount: log.length,
    });
  }
  const { sessions } = await list(server.client, {});
  expect(sessions.map((meta) => meta.sessionId)).toEqual(Object.keys(expected).sort());
}

describe("restart", () => {
  it("serves everything a gracefully stopped server took, from the same data directory", async () => {
    const dataDir = await makeTempDir();
    const first = await startServer({ dataDir });
    await append(first.client, [
      { sessionId: "stored", messages: STORED.slice(0, 4) },
      { sessionId: "mixed", messages: messages("m", 2) },
    ]);
    await flush(first.client, "");
    await append(first.client, [
      { sessionId: "stored", messages: STORED.slice(4) },
      { sessionId: "mixed", messages: messages("m", 3, 2) },
      { sessionId: "buffered", messages: messages("b", 2) },
      { sessionId: "synced", messages: messages("y", 3), sync: true },
    ]);
    await flush(first.client, "stored");
    const created: Record<string, number> = {};
    for (const sessionId of Object.keys(EXPECTED)) {
      created[sessionId] = (await loadMeta(first.client, sessionId)).createdAtMs;
    }
    await first.stop();

    // Shutdown wrote every buffer, in files motosan can read.
    for (const [sessionId, log] of Object.entries(EXPECTED)) {
      expect(await readSessionFile(dataDir, sessionId)).toEqual({
        headerCount: log.length,
        lines: log,
      });
      const text = await readFile(sessionFilePath(dataDir, sessionId), "utf8");
      expect(readLikeMotosan(text)).toEqual(log.map((line) => JSON.parse(line)));
    }

    const second = await startServer({ dataDir });
    await expectServes(second, EXPECTED);
    for (const sessionId of Object.keys(EXPECTED)) {
      expect((await loadMeta(second.client, sessionId)).createdAtMs).toBe(created[sessionId]);
    }

    // Seqs go on from the stored length, and the files keep taking appends.
    const acks = await append(second.client, [
      { sessionId: "stored", messages: messages("s2", 1), expectedSeq: 6 },
      { sessionId: "buffered", messages: messages("b", 1, 2) },
      { sessionId: "fresh", messages: messages("f", 1) },
    ]);
    expect(acks.map(({ firstSeq, nextSeq }) => [firstSeq, nextSeq])).toEqual([
      [6, 7],
      [2, 3],
      [0, 1],
    ]);
    await second.stop();

    const third = await startServer({ dataDir });
    await expectServes(third, {
      ...EXPECTED,
      stored: [...STORED, ...messages("s2", 1)],
      buffered: messages("b", 3),
      fresh: messages("f", 1),
    });
    const meta: SessionMeta = await loadMeta(third.client, "stored");
    expect(meta.createdAtMs).toBe(created.stored);
  });
});
