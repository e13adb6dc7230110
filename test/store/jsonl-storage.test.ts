import { existsSync } from "node:fs";
import {
  appendFile,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import { JsonlFileStorage } from "../../src/store/jsonl/jsonl-storage.js";
import { AGENT_LOOP_VERSION, type StoredSessionMeta } from "../../src/store/storage.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { readLikeMotosan } from "../helpers/test-server.js";
import {
  describeStorageConformance,
  numberedMessages,
  readMessages,
  TRICKY_MESSAGES,
} from "./conformance.js";

const FIXTURES = MOTOSAN_FIXTURES;

function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "jsonl-storage-test-"));
}

function newStorage(directory: string, maxOpenFiles = 64): JsonlFileStorage {
  return new JsonlFileStorage({ directory, maxOpenFiles, log: pino({ level: "silent" }) });
}

describeStorageConformance("JsonlFileStorage", async () => {
  const directory = await makeTempDir();
  return {
    storage: newStorage(directory),
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
});

/** The lines of a file's text, without the empty string after the final newline. */
function linesOf(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** Line 1 of a file, parsed as motosan's serde would (JSON.parse also allows trailing spaces). */
function headerOf(text: string): Record<string, unknown> {
  return JSON.parse(linesOf(text)[0] ?? "") as Record<string, unknown>;
}

/** A file's complete text must end in a newline and hold only JSON objects, one per line. */
function expectWholeLines(text: string): void {
  expect(text.endsWith("\n")).toBe(true);
  for (const line of linesOf(text)) {
    expect(() => JSON.parse(line), line).not.toThrow();
  }
}

describe("JsonlFileStorage files", () => {
  let directory: string;
  /** Every storage a test opens, closed after it. */
  let opened: JsonlFileStorage[];

  beforeEach(async () => {
    directory = await makeTempDir();
    opened = [];
  });

  afterEach(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
    await rm(directory, { recursive: true, force: true });
  });

  async function openStorage(maxOpenFiles = 64): Promise<JsonlFileStorage> {
    const storage = newStorage(directory, maxOpenFiles);
    opened.push(storage);
    await storage.open();
    return storage;
  }

  /** Closes `storage` and opens a new one on the same directory, as after a restart. */
  async function reopen(storage: JsonlFileStorage, maxOpenFiles = 64): Promise<JsonlFileStorage> {
    opened.splice(opened.indexOf(storage), 1);
    await storage.close();
    return openStorage(maxOpenFiles);
  }

  const fileOf = (sessionId: string) => join(directory, `${sessionId}.jsonl`);
  const readText = (sessionId: string) => readFile(fileOf(sessionId), "utf8");

  /** Copies a fixture in with fresh permissions (the fixtures are read-only), optionally edited. */
  async function copyFixture(
    name: string,
    edit: (text: string) => string = (text) => text,
  ): Promise<string> {
    const text = await readFile(join(FIXTURES, `${name}.jsonl`), "utf8");
    await writeFile(fileOf(name), edit(text));
    return text;
  }

  async function fixtureLines(name: string): Promise<string[]> {
    return linesOf(await readFile(join(FIXTURES, `${name}.jsonl`), "utf8"));
  }

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    return promise.then(
      () => expect.fail("expected a rejection"),
      (error: unknown) => error,
    );
  }

  describe("motosan fixtures", () => {
    const fixtureNames = ["agent-7f3a", "empty", "no-header", "precise", "torn-1"];

    beforeEach(async () => {
      for (const name of fixtureNames) await copyFixture(name);
    });

    it("lists every fixture as a session", async () => {
      const storage = await openStorage();
      const metas = await storage.list({ prefix: "", after: "", limit: 100 });
      expect(metas.map((meta) => meta.sessionId)).toStrictEqual(fixtureNames);
      expect(metas.map((meta) => meta.messageCount)).toStrictEqual([5, 0, 2, 2, 3]);
    });

    it("loads agent-7f3a: 5 messages byte for byte, with its created_at_ms and agent_loop_version", async () => {
      const storage = await openStorage();
      const lines = await fixtureLines("agent-7f3a");

      expect(await storage.meta("agent-7f3a")).toMatchObject({
        sessionId: "agent-7f3a",
        createdAtMs: 1_731_000_000_000,
        agentLoopVersion: "0.7.1",
        messageCount: 5,
      });
      expect(await readMessages(storage, "agent-7f3a", 0, 5)).toStrictEqual(lines.slice(1));
      expect(await readMessages(storage, "agent-7f3a", 3, 2)).toStrictEqual(lines.slice(4));

      // Appending keeps both header fields from the fixture, also across a restart.
      await storage.write("agent-7f3a", 5, numberedMessages(5, 1), { sync: true, createdAtMs: 42 });
      const reopened = await reopen(storage);
      expect(await reopened.meta("agent-7f3a")).toMatchObject({
        createdAtMs: 1_731_000_000_000,
        agentLoopVersion: "0.7.1",
        messageCount: 6,
      });
      const header = headerOf(await readText("agent-7f3a"));
      expect(header).toMatchObject({
        created_at_ms: 1_731_000_000_000,
        agent_loop_version: "0.7.1",
        message_count: 6,
      });
      expect(await readMessages(reopened, "agent-7f3a", 0, 6)).toStrictEqual([
        ...lines.slice(1),
        ...numberedMessages(5, 1),
      ]);
    });

    it("loads torn-1 as 3 messages, never serving the torn tail nor leaving it in the file", async () => {
      const storage = await openStorage();
      const lines = await fixtureLines("torn-1");
      const tornTail = lines.at(-1) ?? "";
      expect(tornTail).toBe('{"role":"Tool","c');

      expect(await storage.meta("torn-1")).toMatchObject({
        createdAtMs: 1_731_000_001_000,
        messageCount: 3,
      });
      expect(await readMessages(storage, "torn-1", 0, 3)).toStrictEqual(lines.slice(1, 4));
      let text = await readText("torn-1");
      expectWholeLines(text);
      expect(text).not.toContain(tornTail);

      // The next message takes seq 3, where the torn record was.
      await storage.write("torn-1", 3, numberedMessages(3, 1), { sync: true, createdAtMs: 0 });
      const reopened = await reopen(storage);
      expect(await readMessages(reopened, "torn-1", 0, 4)).toStrictEqual([
        ...lines.slice(1, 4),
        ...numberedMessages(3, 1),
      ]);
      text = await readText("torn-1");
      expectWholeLines(text);
      expect(text).not.toContain(tornTail);
      expect(readLikeMotosan(text)).toHaveLength(4);
    });

    it("loads precise: its 2 lines byte for byte", async () => {
      const storage = await openStorage();
      const lines = await fixtureLines("precise");
      expect(lines[1]).toContain("12345678901234567890");
      expect(lines[1]).toContain(String.raw`\u00e9 \/`);
      expect(lines[2]).toContain("1.50");

      expect(await storage.meta("precise")).toMatchObject({
        createdAtMs: 1_731_000_002_000,
        messageCount: 2,
      });
      expect(await readMessages(storage, "precise", 0, 2)).toStrictEqual(lines.slice(1));
      expect(linesOf(await readText("precise")).slice(1)).toStrictEqual(lines.slice(1));
    });

    it("loads empty as an existing session with 0 messages that can take its first", async () => {
      const storage = await openStorage();
      expect(await storage.meta("empty")).toMatchObject({
        sessionId: "empty",
        createdAtMs: 1_731_000_003_000,
        agentLoopVersion: "0.7.1",
        messageCount: 0,
      });
      expect(await readMessages(storage, "empty", 0, 0)).toStrictEqual([]);

      await storage.write("empty", 0, numberedMessages(0, 2), { sync: false, createdAtMs: 7 });
      expect(await storage.meta("empty")).toMatchObject({
        createdAtMs: 1_731_000_003_000,
        messageCount: 2,
      });
      expect(await readMessages(storage, "empty", 0, 2)).toStrictEqual(numberedMessages(0, 2));
      expect(headerOf(await readText("empty"))).toMatchObject({
        session_id: "empty",
        created_at_ms: 1_731_000_003_000,
        message_count: 2,
      });
    });

    it("loads no-header as 2 messages byte for byte", async () => {
      const storage = await openStorage();
      const lines = await fixtureLines("no-header");
      expect(await storage.meta("no-header")).toMatchObject({ messageCount: 2 });
      expect(await readMessages(storage, "no-header", 0, 2)).toStrictEqual(lines);

      await storage.write("no-header", 2, numberedMessages(2, 1), { sync: true, createdAtMs: 0 });
      const text = await readText("no-header");
      expect(headerOf(text)).toMatchObject({ session_id: "no-header", message_count: 3 });
      expect(linesOf(text).slice(1)).toStrictEqual([...lines, ...numberedMessages(2, 1)]);
    });

    it("loads a motosan file with CRLF endings and blank lines, as motosan's reader does", async () => {
      const lines = await fixtureLines("agent-7f3a");
      await copyFixture("agent-7f3a", (text) => `${text.replace(/\n/g, "\r\n\r\n")}\n  \n`);
      const storage = await openStorage();
      expect(await storage.meta("agent-7f3a")).toMatchObject({
        createdAtMs: 1_731_000_000_000,
        messageCount: 5,
      });
      expect(await readMessages(storage, "agent-7f3a", 0, 5)).toStrictEqual(lines.slice(1));
      expect(linesOf(await readText("agent-7f3a")).slice(1)).toStrictEqual(lines.slice(1));
    });

    it("leaves every fixture readable by motosan once loaded", async () => {
      const storage = await openStorage();
      const expected: Record<string, number> = {
        "agent-7f3a": 5,
        empty: 0,
        "no-header": 2,
        precise: 2,
        "torn-1": 3,
      };
      for (const [name, count] of Object.entries(expected)) {
        await storage.meta(name);
        const text = await readText(name);
        expect(headerOf(text), name).toMatchObject({ session_id: name, message_count: count });
        expect(readLikeMotosan(text), name).toStrictEqual(
          (await readMessages(storage, name, 0, count)).map((line) => JSON.parse(line)),
        );
      }
    });
  });

  describe("files we write, as motosan reads them", () => {
    it("keeps a serde-parsable header with the right message_count after every write, and the messages", async () => {
      let storage = await openStorage();
      const written: string[] = [];
      let headerLength: number | undefined;
      const check = async () => {
        const text = await readText("compat");
        const firstLine = linesOf(text)[0] ?? "";
        headerLength ??= firstLine.length;
        expect(firstLine).toHaveLength(headerLength);
        expect(firstLine).toMatch(/^\{.*\} *$/);
        expect(headerOf(text)).toMatchObject({
          session_id: "compat",
          created_at_ms: 1_731_000_000_777,
          agent_loop_version: AGENT_LOOP_VERSION,
          message_count: written.length,
        });
        expect(linesOf(text).slice(1)).toStrictEqual(written);
        expect(readLikeMotosan(text)).toStrictEqual(written.map((line) => JSON.parse(line)));
        expect(await storage.meta("compat")).toMatchObject({
          createdAtMs: 1_731_000_000_777,
          messageCount: written.length,
        });
      };

      const batches = [TRICKY_MESSAGES, numberedMessages(3, 1), numberedMessages(4, 25), []];
      for (const [index, batch] of batches.entries()) {
        await storage.write("compat", written.length, batch, {
          sync: index % 2 === 0,
          createdAtMs: 1_731_000_000_777 + index,
        });
        written.push(...batch);
        await check();
      }

      storage = await reopen(storage);
      await check();
      await storage.write("compat", written.length, numberedMessages(29, 2), {
        sync: false,
        createdAtMs: 5,
      });
      written.push(...numberedMessages(29, 2));
      await check();
    });

    it("appends only: earlier bytes, the inode and the header length stay the same", async () => {
      const storage = await openStorage();
      await storage.write("append-only", 0, numberedMessages(0, 3), { sync: true, createdAtMs: 1 });

      for (const batch of [numberedMessages(3, 1), TRICKY_MESSAGES, numberedMessages(7, 40)]) {
        const before = await readFile(fileOf("append-only"));
        const beforeStat = await stat(fileOf("append-only"));
        const headerLength = before.indexOf(0x0a) + 1;
        const count = (await storage.meta("append-only"))?.messageCount ?? -1;

        await storage.write("append-only", count, batch, { sync: false, createdAtMs: 1 });

        const after = await readFile(fileOf("append-only"));
        const afterStat = await stat(fileOf("append-only"));
        expect(afterStat.ino).toBe(beforeStat.ino);
        expect(after.indexOf(0x0a) + 1).toBe(headerLength);
        expect(
          after.subarray(headerLength, before.length).equals(before.subarray(headerLength)),
        ).toBe(true);
        expect(after.subarray(before.length).toString("utf8")).toBe(`${batch.join("\n")}\n`);
        expect(after.subarray(0, headerLength).equals(before.subarray(0, headerLength))).toBe(
          false,
        );
      }
    });
  });

  describe("restarts and crashes", () => {
    const stableFields = (meta: StoredSessionMeta | undefined) => ({
      sessionId: meta?.sessionId,
      createdAtMs: meta?.createdAtMs,
      agentLoopVersion: meta?.agentLoopVersion,
      messageCount: meta?.messageCount,
      durableCount: meta?.durableCount,
    });

    it("gives the same metadata and messages after a reopen", async () => {
      const storage = await openStorage();
      await storage.write("kept", 0, TRICKY_MESSAGES, {
        sync: false,
        createdAtMs: 1_731_000_000_555,
      });
      await storage.write("kept", 3, numberedMessages(3, 4), { sync: true, createdAtMs: 0 });
      await storage.write("other", 0, numberedMessages(0, 1), { sync: true, createdAtMs: 9 });
      const before = await storage.list({ prefix: "", after: "", limit: 10 });

      const reopened = await reopen(storage);
      const after = await reopened.list({ prefix: "", after: "", limit: 10 });
      expect(after.map(stableFields)).toStrictEqual(before.map(stableFields));
      expect(after.map(stableFields)[0]).toStrictEqual({
        sessionId: "kept",
        createdAtMs: 1_731_000_000_555,
        agentLoopVersion: AGENT_LOOP_VERSION,
        messageCount: 7,
        durableCount: 7,
      });
      expect(await readMessages(reopened, "kept", 0, 7)).toStrictEqual([
        ...TRICKY_MESSAGES,
        ...numberedMessages(3, 4),
      ]);
      expect(await readMessages(reopened, "other", 0, 1)).toStrictEqual(numberedMessages(0, 1));
    });

    it("counts complete lines a crash left after the header's count", async () => {
      const storage = await openStorage();
      await storage.write("crashed", 0, numberedMessages(0, 3), { sync: true, createdAtMs: 11 });
      await storage.close();
      opened = [];
      // The process died after appending lines, before rewriting the header.
      await appendFile(fileOf("crashed"), `${numberedMessages(3, 2).join("\n")}\n`);

      let reopened = await openStorage();
      expect(await reopened.meta("crashed")).toMatchObject({ createdAtMs: 11, messageCount: 5 });
      expect(await readMessages(reopened, "crashed", 0, 5)).toStrictEqual(numberedMessages(0, 5));
      expect(headerOf(await readText("crashed"))).toMatchObject({
        message_count: 5,
        created_at_ms: 11,
      });

      await reopened.write("crashed", 5, numberedMessages(5, 1), { sync: true, createdAtMs: 0 });
      reopened = await reopen(reopened);
      expect(await reopened.meta("crashed")).toMatchObject({ messageCount: 6 });
      expect(await readMessages(reopened, "crashed", 0, 6)).toStrictEqual(numberedMessages(0, 6));
    });

    it("cuts off a partial last line a crash left, and never serves it", async () => {
      const storage = await openStorage();
      await storage.write("torn", 0, numberedMessages(0, 3), { sync: true, createdAtMs: 12 });
      await storage.close();
      opened = [];
      const partial = '{"n":4,"tag":"torn';
      await appendFile(fileOf("torn"), `${numberedMessages(3, 1)[0]}\n${partial}`);

      const reopened = await openStorage();
      expect(await reopened.meta("torn")).toMatchObject({ messageCount: 4 });
      expect(await readMessages(reopened, "torn", 0, 4)).toStrictEqual(numberedMessages(0, 4));
      let text = await readText("torn");
      expectWholeLines(text);
      expect(text).not.toContain(partial);

      await reopened.write("torn", 4, ['{"n":4,"tag":"whole"}'], { sync: true, createdAtMs: 0 });
      expect(await readMessages(reopened, "torn", 3, 2)).toStrictEqual([
        numberedMessages(3, 1)[0],
        '{"n":4,"tag":"whole"}',
      ]);
      text = await readText("torn");
      expectWholeLines(text);
      expect(text).not.toContain(partial);
    });

    it("refuses with DATA_LOSS, keeping the file, a bad record after the header's count with valid ones after it", async () => {
      const storage = await openStorage();
      await storage.write("garbled", 0, numberedMessages(0, 2), { sync: true, createdAtMs: 13 });
      await storage.close();
      opened = [];
      // Not a torn write: valid records follow the bad one, so cutting it off would lose them.
      await appendFile(
        fileOf("garbled"),
        `${numberedMessages(2, 1)[0]}\nnot json\n${numberedMessages(4, 1)[0]}\n`,
      );
      const garbledText = await readText("garbled");

      const reopened = await openStorage();
      const error = await rejection(readMessages(reopened, "garbled", 0, 1));
      expect((error as SessionStoreError).code).toBe(Code.DataLoss);
      expect((error as SessionStoreError).message).toMatch(/\bseq 3\b/);
      expect(await readText("garbled")).toBe(garbledText);
    });

    it("refuses with DATA_LOSS, never serving it, a record garbled inside a file it trusts", async () => {
      const storage = await openStorage();
      await storage.write("rotted", 0, numberedMessages(0, 4), { sync: true, createdAtMs: 14 });
      await storage.close();
      opened = [];
      const text = await readText("rotted");
      const line = numberedMessages(2, 1)[0] as string;
      // Same length, so the header still matches the file size and no recovery scan runs.
      await writeFile(fileOf("rotted"), text.replace(line, "\u0000".repeat(line.length)));

      const reopened = await openStorage();
      expect(await readMessages(reopened, "rotted", 0, 2)).toStrictEqual(numberedMessages(0, 2));
      const error = await rejection(readMessages(reopened, "rotted", 0, 4));
      expect((error as SessionStoreError).code).toBe(Code.DataLoss);
      expect((error as SessionStoreError).message).toMatch(/\bseq 2\b/);
      const writeError = await rejection(
        reopened.write("rotted", 4, numberedMessages(4, 1), { sync: true, createdAtMs: 0 }),
      );
      expect((writeError as SessionStoreError).code).toBe(Code.DataLoss);
    });

    it("refuses with DATA_LOSS naming the seq to read a file with a corrupt line in the middle", async () => {
      const original = await copyFixture("agent-7f3a", (text) => {
        const lines = text.split("\n");
        lines[2] = "this line is not JSON";
        return lines.join("\n");
      });
      await copyFixture("precise");
      const corruptText = await readText("agent-7f3a");
      expect(corruptText).not.toBe(original);
      const storage = await openStorage();

      const error = await rejection(readMessages(storage, "agent-7f3a", 0, 1));
      expect(error).toBeInstanceOf(SessionStoreError);
      expect((error as SessionStoreError).code).toBe(Code.DataLoss);
      expect((error as SessionStoreError).message).toMatch(/\bseq 1\b/);
      const writeError = await rejection(
        storage.write(
          "agent-7f3a",
          (await storage.meta("agent-7f3a"))?.messageCount ?? 0,
          numberedMessages(0, 1),
          {
            sync: true,
            createdAtMs: 0,
          },
        ),
      );
      expect((writeError as SessionStoreError).code).toBe(Code.DataLoss);
      // The file is left for an operator to repair, not rewritten without the corrupt record.
      expect(await readText("agent-7f3a")).toBe(corruptText);

      // Other sessions keep working.
      expect(await readMessages(storage, "precise", 0, 2)).toStrictEqual(
        (await fixtureLines("precise")).slice(1),
      );
      await storage.write("fresh", 0, numberedMessages(0, 2), { sync: true, createdAtMs: 1 });
      expect(await readMessages(storage, "fresh", 0, 2)).toStrictEqual(numberedMessages(0, 2));
      expect(
        (await storage.list({ prefix: "", after: "", limit: 10 })).map((meta) => meta.sessionId),
      ).toStrictEqual(["agent-7f3a", "fresh", "precise"]);
    });
  });

  describe("session ids and file handles", () => {
    it("ignores files whose names are not valid session ids", async () => {
      await copyFixture("precise");
      const header = (id: string) =>
        `${JSON.stringify({ session_id: id, created_at_ms: 1, agent_loop_version: "0.7.1", message_count: 1 })}\n{"a":1}\n`;
      const invalidNames = [
        ".hidden",
        "has space",
        "semi;colon",
        "plus+sign",
        "x".repeat(201),
        ".precise",
      ];
      for (const name of invalidNames)
        await writeFile(join(directory, `${name}.jsonl`), header(name));
      await writeFile(join(directory, "notes.txt"), "not a session\n");
      await writeFile(join(directory, "precise.jsonl.tmp"), "leftover\n");

      const storage = await openStorage();
      expect(
        (await storage.list({ prefix: "", after: "", limit: 100 })).map((meta) => meta.sessionId),
      ).toStrictEqual(["precise"]);
      await storage.write("new", 0, numberedMessages(0, 1), { sync: false, createdAtMs: 1 });
      expect(
        (await storage.list({ prefix: "", after: "", limit: 100 })).map((meta) => meta.sessionId),
      ).toStrictEqual(["new", "precise"]);
    });

    it("rewrites 12 motosan files opened at once with maxOpenFiles 2, without deadlock", async () => {
      const fixture = await readFile(join(FIXTURES, "agent-7f3a.jsonl"), "utf8");
      const ids = Array.from({ length: 12 }, (_, i) => `motosan-${i}`);
      await Promise.all(ids.map((id) => writeFile(fileOf(id), fixture)));
      const storage = await openStorage(2);
      const metas = await Promise.all(ids.map((id) => storage.meta(id)));
      expect(metas.map((meta) => meta?.messageCount)).toEqual(ids.map(() => 5));
      for (const id of ids)
        expect(headerOf(await readText(id))).toMatchObject({ session_id: id, message_count: 5 });
    });

    it("serves 50 sessions, interleaved, with maxOpenFiles 2", async () => {
      let storage = await openStorage(2);
      const ids = Array.from({ length: 50 }, (_, i) => `s-${String(i).padStart(2, "0")}`);
      const rounds = 4;
      for (let round = 0; round < rounds; round++) {
        // Sequential: each write and read touches a different file than the last one.
        for (const [index, id] of ids.entries()) {
          await storage.write(id, round, numberedMessages(round, 1, id), {
            sync: round === 1,
            createdAtMs: index,
          });
          const other = ids[(index + 25) % ids.length] as string;
          const otherCount = index + 25 < ids.length ? round : round + 1;
          expect(await readMessages(storage, other, 0, otherCount)).toStrictEqual(
            numberedMessages(0, otherCount, other),
          );
        }
      }
      // Concurrent: more files in use at once than the pool keeps.
      await Promise.all(
        ids.map((id) =>
          storage.write(id, rounds, numberedMessages(rounds, 1, id), {
            sync: true,
            createdAtMs: 0,
          }),
        ),
      );
      const all = await Promise.all(ids.map((id) => readMessages(storage, id, 0, rounds + 1)));
      expect(all).toStrictEqual(ids.map((id) => numberedMessages(0, rounds + 1, id)));

      if (existsSync("/proc/self/fd")) {
        // Idle handles beyond the pool's capacity are closed (asynchronously).
        await vi.waitFor(async () =>
          expect(await openFilesUnder(directory)).toBeLessThanOrEqual(2),
        );
      }

      storage = await reopen(storage, 2);
      const metas = await storage.list({ prefix: "s-", after: "", limit: 100 });
      expect(
        metas.map((meta) => [meta.sessionId, meta.messageCount, meta.createdAtMs]),
      ).toStrictEqual(ids.map((id, index) => [id, rounds + 1, index]));
      for (const id of ids) {
        expect(await readMessages(storage, id, rounds - 1, 2)).toStrictEqual(
          numberedMessages(rounds - 1, 2, id),
        );
      }
    });
  });

  describe("reading the end of a long session", () => {
    /** Messages of varied length (~0.5–2.5 KB) so that 2,000 of them span several 1 MiB read chunks. */
    const longMessage = (seq: number) =>
      `{"seq":${seq},"pad":"${"x".repeat(((seq * 7919) % 2000) + 500)}"}`;
    const total = 2000;
    const expected = Array.from({ length: total }, (_, seq) => longMessage(seq));

    it("reads the last 3 of 2,000 messages, and ranges in the middle, also after a reopen", async () => {
      let storage = await openStorage();
      for (let seq = 0; seq < total; seq += 250) {
        await storage.write("long", seq, expected.slice(seq, seq + 250), {
          sync: false,
          createdAtMs: 1,
        });
      }
      expect((await stat(fileOf("long"))).size).toBeGreaterThan(2 * 2 ** 20);

      for (const pass of ["warm", "reopened"]) {
        if (pass === "reopened") storage = await reopen(storage);
        const ranges: [from: number, count: number][] = [
          [total - 3, 3],
          [total - 1, 1],
          [1000, 5],
          [999, 2],
          [600, 700],
          [1500, 400],
          [1, 3],
          [0, total],
        ];
        for (const [from, count] of ranges) {
          expect(
            await readMessages(storage, "long", from, count),
            `${pass}: from ${from}, count ${count}`,
          ).toStrictEqual(expected.slice(from, from + count));
        }
      }
    });
  });
});

/** How many of this process's open file descriptors point into `directory` (Linux only). */
async function openFilesUnder(directory: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(`${directory}/`)) count++;
  }
  return count;
}
