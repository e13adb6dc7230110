import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoadRequest } from "../../gen/sessionstore/v1/session_store.js";
import {
  append,
  appendStream,
  collect,
  loadAll,
  makeTempDir,
  startTestServer,
  type TestServer,
} from "../helpers/test-server.js";
import {
  deleteSession,
  expectStatus,
  flush,
  list,
  loadMeta,
  readSessionFile,
  SESSION_ID_RULE_PARTS,
} from "./support.js";

let parentDir: string;
let running: TestServer;

beforeAll(async () => {
  // The data directory sits in a directory of its own, so escapes out of it can be seen.
  parentDir = await makeTempDir();
  running = await startTestServer({ dataDir: join(parentDir, "data") });
});

afterAll(async () => {
  await running.close();
  await rm(parentDir, { recursive: true, force: true });
});

const HOSTILE_IDS: [string, string][] = [
  ["a parent path", "../x"],
  ["a deeper parent path", "../../etc/passwd"],
  ["a separator", "a/b"],
  ["an absolute path", "/tmp/x"],
  ["empty", ""],
  ["201 characters", "x".repeat(201)],
  ["a NUL", "a\u0000b"],
  ["a leading dot", ".hidden"],
  ["only dots", ".."],
];

/** Flush takes an empty id to mean every session, so it is not one Flush rejects. */
const NON_EMPTY_HOSTILE_IDS = HOSTILE_IDS.filter(([, sessionId]) => sessionId !== "");

const RPCS: [string, (sessionId: string) => Promise<unknown>, [string, string][]][] = [
  [
    "Append",
    async (sessionId) => {
      const { acks, error } = await appendStream(running.client, [
        { sessionId, messages: ['{"escape":true}'] },
      ]);
      expect(acks).toEqual([]);
      if (error) throw error;
    },
    HOSTILE_IDS,
  ],
  [
    "Load",
    (sessionId) => collect(running.client.load(LoadRequest.fromPartial({ sessionId }))),
    HOSTILE_IDS,
  ],
  ["LoadMeta", (sessionId) => loadMeta(running.client, sessionId), HOSTILE_IDS],
  ["Delete", (sessionId) => deleteSession(running.client, sessionId), HOSTILE_IDS],
  ["Flush", (sessionId) => flush(running.client, sessionId), NON_EMPTY_HOSTILE_IDS],
];

describe("session ids", () => {
  describe.each(RPCS)("%s", (_rpc, call, ids) => {
    it.each(ids)("rejects %s with INVALID_ARGUMENT stating the rule", async (_case, sessionId) => {
      const error: ServiceError = await expectStatus(call(sessionId), status.INVALID_ARGUMENT);
      for (const part of SESSION_ID_RULE_PARTS) expect(error.details).toMatch(part);
    });
  });

  it("creates nothing outside the data directory, nor anything for a rejected id", async () => {
    for (const [, sessionId] of HOSTILE_IDS) {
      await appendStream(running.client, [{ sessionId, messages: ['{"escape":true}'] }]);
    }
    await flush(running.client, "");
    expect(await readdir(parentDir)).toEqual(["data"]);
    // Only the server's own directories (indexes, forks' pieces, labels, rewrites) and its
    // journal (one empty segment: nothing was journaled), no session file.
    expect((await readdir(join(parentDir, "data"), { recursive: true })).sort()).toEqual([
      ".sessionstore",
      ".sessionstore/forks",
      ".sessionstore/index",
      ".sessionstore/journal",
      ".sessionstore/journal/0000000000000001.journal",
      ".sessionstore/labels",
      ".sessionstore/tmp",
    ]);
    expect(
      (await stat(join(parentDir, "data", ".sessionstore/journal/0000000000000001.journal"))).size,
    ).toBe(0);
    expect((await list(running.client, {})).sessions).toEqual([]);
  });

  it("accepts a 200-character id and every allowed character", async () => {
    const { client, dataDir } = running;
    const longest = "a".repeat(200);
    const mixed = "Az09._:@~-.x";
    for (const sessionId of [longest, mixed]) {
      const acks = await append(client, [{ sessionId, messages: ['{"ok":true}'] }]);
      expect(acks).toEqual([{ sessionId, firstSeq: 0, nextSeq: 1, durableCount: 0 }]);
      expect(await flush(client, sessionId)).toEqual({ flushed: 1, failures: [] });
      expect((await loadAll(client, sessionId)).messages).toEqual(['{"ok":true}']);
      expect(await loadMeta(client, sessionId)).toMatchObject({ sessionId, messageCount: 1 });
      expect(await readSessionFile(dataDir, sessionId)).toEqual({
        headerCount: 1,
        lines: ['{"ok":true}'],
      });
    }
    expect((await list(client, {})).sessions.map((meta) => meta.sessionId)).toEqual(
      [longest, mixed].sort(),
    );
    for (const sessionId of [longest, mixed]) {
      expect(await deleteSession(client, sessionId)).toEqual({ existed: true });
    }
  });
});
