import { existsSync } from "node:fs";
import { readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { AGENT_LOOP_VERSION, listByIdQuery } from "../../src/store/storage.js";
import { readLikeMotosan } from "../helpers/test-server.js";
import {
  appendOnce,
  describeStorageConformance,
  numberedMessages,
  readMessages,
  TRICKY_MESSAGES,
} from "./conformance.js";
import {
  headerOf,
  jsonlFixture,
  linesOf,
  MOTOSAN_FIXTURES,
  useDataDirectory,
} from "./jsonl-support.js";

describeStorageConformance("JsonlFileStorage", jsonlFixture);

/** A file's complete text must end in a newline and hold only JSON objects, one per line. */
function expectWholeLines(text: string): void {
  expect(text.endsWith("\n")).toBe(true);
  for (const line of linesOf(text)) {
    expect(() => JSON.parse(line), line).not.toThrow();
  }
}

describe("JsonlFileStorage files", () => {
  const data = useDataDirectory();

  describe("motosan's files, served in place", () => {
    const fixtureNames = ["agent-7f3a", "empty", "no-header", "precise", "torn-1"];

    it("lists every fixture as a session", async () => {
      for (const name of fixtureNames) await data.copyFixture(name);
      const storage = await data.openStorage();
      const metas = await storage.list(listByIdQuery("", "", 100));
      expect(metas.map((meta) => meta.sessionId)).toStrictEqual(fixtureNames);
      expect(metas.map((meta) => meta.messageCount)).toStrictEqual([5, 0, 2, 2, 3]);
    });

    it("loads agent-7f3a byte for byte, and appends to it without touching its bytes or header", async () => {
      const original = await data.copyFixture("agent-7f3a");
      const lines = linesOf(original);
      const inode = (await stat(data.file("agent-7f3a"))).ino;
      const storage = await data.openStorage();

      expect(await storage.meta("agent-7f3a")).toMatchObject({
        sessionId: "agent-7f3a",
        createdAtMs: 1_731_000_000_000,
        agentLoopVersion: "0.7.1",
        messageCount: 5,
      });
      expect(await readMessages(storage, "agent-7f3a")).toStrictEqual(lines.slice(1));
      expect(await readMessages(storage, "agent-7f3a", { fromSeq: 3 })).toStrictEqual(
        lines.slice(4),
      );
      expect(await data.readText("agent-7f3a")).toBe(original);

      await appendOnce(storage, "agent-7f3a", numberedMessages(5, 2), { sync: true });
      // A durable append is in the journal; Flush brings the file up to date.
      await storage.flush("agent-7f3a");
      const text = await data.readText("agent-7f3a");
      // Appended to, never rewritten: motosan's bytes, its header line included, are as it wrote them.
      expect(text).toBe(`${original}${numberedMessages(5, 2).join("\n")}\n`);
      expect((await stat(data.file("agent-7f3a"))).ino).toBe(inode);
      expect(readLikeMotosan(text)).toHaveLength(7);

      const reopened = await data.reopen(storage);
      expect(await reopened.meta("agent-7f3a")).toMatchObject({
        createdAtMs: 1_731_000_000_000,
        agentLoopVersion: "0.7.1",
        messageCount: 7,
      });
      expect(await readMessages(reopened, "agent-7f3a")).toStrictEqual([
        ...lines.slice(1),
        ...numberedMessages(5, 2),
      ]);
    });

    it("loads torn-1 as 3 messages, cutting the torn tail off its file, never serving it", async () => {
      await data.copyFixture("torn-1");
      const lines = await data.fixtureLines("torn-1");
      const tornTail = lines.at(-1) ?? "";
      expect(tornTail).toBe('{"role":"Tool","c');
      const storage = await data.openStorage();

      expect(await storage.meta("torn-1")).toMatchObject({
        createdAtMs: 1_731_000_001_000,
        messageCount: 3,
      });
      expect(await readMessages(storage, "torn-1")).toStrictEqual(lines.slice(1, 4));
      let text = await data.readText("torn-1");
      expectWholeLines(text);
      expect(text).not.toContain(tornTail);

      // The next message takes seq 3, where the torn record was.
      await appendOnce(storage, "torn-1", numberedMessages(3, 1), { sync: true });
      const reopened = await data.reopen(storage);
      expect(await readMessages(reopened, "torn-1")).toStrictEqual([
        ...lines.slice(1, 4),
        ...numberedMessages(3, 1),
      ]);
      text = await data.readText("torn-1");
      expectWholeLines(text);
      expect(readLikeMotosan(text)).toHaveLength(4);
    });

    it("loads precise and no-header byte for byte, and empty as a session with 0 messages", async () => {
      for (const name of ["precise", "no-header", "empty"]) await data.copyFixture(name);
      const storage = await data.openStorage();
      const precise = await data.fixtureLines("precise");
      expect(precise[1]).toContain("12345678901234567890");
      expect(precise[1]).toContain(String.raw`\u00e9 \/`);
      expect(await readMessages(storage, "precise")).toStrictEqual(precise.slice(1));
      expect(await readMessages(storage, "no-header")).toStrictEqual(
        await data.fixtureLines("no-header"),
      );
      expect(await storage.meta("empty")).toMatchObject({
        createdAtMs: 1_731_000_003_000,
        agentLoopVersion: "0.7.1",
        messageCount: 0,
      });

      await appendOnce(storage, "no-header", numberedMessages(2, 1));
      await appendOnce(storage, "empty", numberedMessages(0, 2));
      await storage.flush();
      // A header-less file stays header-less; motosan's empty session gets its lines after its header.
      expect(linesOf(await data.readText("no-header"))).toStrictEqual([
        ...(await data.fixtureLines("no-header")),
        ...numberedMessages(2, 1),
      ]);
      const empty = await data.readText("empty");
      expect(readLikeMotosan(empty)).toStrictEqual(
        numberedMessages(0, 2).map((line) => JSON.parse(line)),
      );
    });

    it("reads a motosan file with CRLF endings and blank lines as motosan's reader does", async () => {
      const lines = await data.fixtureLines("agent-7f3a");
      const edited = await data.copyFixture(
        "agent-7f3a",
        (text) => `${text.replace(/\n/g, "\r\n\r\n")}\n  \n`,
      );
      const text = await data.readText("agent-7f3a");
      expect(text).not.toBe(edited);
      const storage = await data.openStorage();
      expect(await storage.meta("agent-7f3a")).toMatchObject({ messageCount: 5 });
      expect(await readMessages(storage, "agent-7f3a")).toStrictEqual(lines.slice(1));
      await appendOnce(storage, "agent-7f3a", numberedMessages(5, 1), { sync: true });
      await storage.flush("agent-7f3a");
      expect(readLikeMotosan(await data.readText("agent-7f3a"))).toHaveLength(6);
      expect(await readMessages(storage, "agent-7f3a", { fromSeq: 4 })).toStrictEqual([
        lines[5],
        ...numberedMessages(5, 1),
      ]);
    });

    it("gives a last record without a newline one before appending, so records never merge", async () => {
      await writeFile(data.file("no-eol"), '{"a":1}\n{"b":2}');
      const storage = await data.openStorage();
      expect(await readMessages(storage, "no-eol")).toStrictEqual(['{"a":1}', '{"b":2}']);
      await appendOnce(storage, "no-eol", ['{"c":3}'], { sync: true });
      await storage.flush("no-eol");
      expect(await data.readText("no-eol")).toBe('{"a":1}\n{"b":2}\n{"c":3}\n');
      expect(await readMessages(await data.reopen(storage), "no-eol")).toStrictEqual([
        '{"a":1}',
        '{"b":2}',
        '{"c":3}',
      ]);
    });
  });

  describe("files the server writes, as motosan reads them", () => {
    it("keeps a serde-parsable header with the right message_count after every write", async () => {
      let storage = await data.openStorage();
      const written: string[] = [];
      let headerLength: number | undefined;
      const check = async () => {
        const text = await data.readText("compat");
        const firstLine = linesOf(text)[0] ?? "";
        headerLength ??= firstLine.length;
        expect(firstLine).toHaveLength(headerLength);
        expect(firstLine).toMatch(/^\{.*\} *$/);
        expect(headerOf(text)).toMatchObject({
          session_id: "compat",
          agent_loop_version: AGENT_LOOP_VERSION,
          message_count: written.length,
        });
        expect(linesOf(text).slice(1)).toStrictEqual(written);
        expect(readLikeMotosan(text)).toStrictEqual(written.map((line) => JSON.parse(line)));
      };
      for (const [index, batch] of [
        TRICKY_MESSAGES,
        numberedMessages(3, 1),
        numberedMessages(4, 25),
      ].entries()) {
        await appendOnce(storage, "compat", batch, { sync: index % 2 === 0 });
        await storage.flush();
        written.push(...batch);
        await check();
      }
      const created = (await storage.meta("compat"))?.createdAtMs;
      storage = await data.reopen(storage);
      await check();
      expect((await storage.meta("compat"))?.createdAtMs).toBe(created);
      expect(headerOf(await data.readText("compat")).created_at_ms).toBe(created);
    });

    it("appends only: earlier bytes, the inode and the header's length stay the same", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "append-only", numberedMessages(0, 3), { sync: true });
      for (const batch of [numberedMessages(3, 1), TRICKY_MESSAGES, numberedMessages(7, 40)]) {
        const before = await readFile(data.file("append-only"));
        const beforeStat = await stat(data.file("append-only"));
        const headerLength = before.indexOf(0x0a) + 1;
        await appendOnce(storage, "append-only", batch);
        await storage.flush("append-only");
        const after = await readFile(data.file("append-only"));
        expect((await stat(data.file("append-only"))).ino).toBe(beforeStat.ino);
        expect(after.indexOf(0x0a) + 1).toBe(headerLength);
        expect(
          after.subarray(headerLength, before.length).equals(before.subarray(headerLength)),
        ).toBe(true);
        expect(after.subarray(before.length).toString("utf8")).toBe(`${batch.join("\n")}\n`);
      }
    });
  });

  describe("file handles", () => {
    it("opens 12 motosan files at once with maxOpenFiles 2, without deadlock", async () => {
      const fixture = await readFile(join(MOTOSAN_FIXTURES, "agent-7f3a.jsonl"), "utf8");
      const ids = Array.from({ length: 12 }, (_, i) => `motosan-${i}`);
      await Promise.all(ids.map((id) => writeFile(data.file(id), fixture)));
      const storage = await data.openStorage({ maxOpenFiles: 2 });
      const metas = await Promise.all(ids.map((id) => storage.meta(id)));
      expect(metas.map((meta) => meta?.messageCount)).toEqual(ids.map(() => 5));
    });

    it("serves 50 sessions, interleaved, with maxOpenFiles 2", async () => {
      let storage = await data.openStorage({ maxOpenFiles: 2, flushMessages: 1 });
      const ids = Array.from({ length: 50 }, (_, i) => `s-${String(i).padStart(2, "0")}`);
      const rounds = 4;
      for (let round = 0; round < rounds; round++) {
        for (const [index, id] of ids.entries()) {
          await appendOnce(storage, id, numberedMessages(round, 1, id), { sync: round === 1 });
          const other = ids[(index + 25) % ids.length] as string;
          const otherCount = index + 25 < ids.length ? round : round + 1;
          expect(await readMessages(storage, other)).toStrictEqual(
            numberedMessages(0, otherCount, other),
          );
        }
      }
      await Promise.all(
        ids.map((id) => appendOnce(storage, id, numberedMessages(rounds, 1, id), { sync: true })),
      );
      const all = await Promise.all(ids.map((id) => readMessages(storage, id)));
      expect(all).toStrictEqual(ids.map((id) => numberedMessages(0, rounds + 1, id)));
      if (existsSync("/proc/self/fd")) {
        // Idle handles beyond the pool's capacity are closed (asynchronously); the journal's
        // own handle is not the pool's.
        await vi.waitFor(async () =>
          expect(await openFilesUnder(data.directory)).toBeLessThanOrEqual(2),
        );
      }
      storage = await data.reopen(storage, { maxOpenFiles: 2 });
      const metas = await storage.list(listByIdQuery("s-", "", 100));
      expect(metas.map((meta) => [meta.sessionId, meta.messageCount])).toStrictEqual(
        ids.map((id) => [id, rounds + 1]),
      );
    });
  });

  it("reads the last 3 of 2,000 messages, and ranges in the middle, also after a reopen", async () => {
    /** Messages of varied length (~0.5–2.5 KB) so that 2,000 of them span several read pages. */
    const longMessage = (seq: number) =>
      `{"seq":${seq},"pad":"${"x".repeat(((seq * 7919) % 2000) + 500)}"}`;
    const total = 2000;
    const expected = Array.from({ length: total }, (_, seq) => longMessage(seq));
    let storage = await data.openStorage();
    for (let seq = 0; seq < total; seq += 250) {
      await appendOnce(storage, "long", expected.slice(seq, seq + 250));
    }
    await storage.flush();
    expect((await stat(data.file("long"))).size).toBeGreaterThan(2 * 2 ** 20);
    for (const pass of ["warm", "reopened"]) {
      if (pass === "reopened") storage = await data.reopen(storage);
      const ranges: [fromSeq: number, limit: number, last: boolean][] = [
        [0, 3, true],
        [0, 1, true],
        [1000, 5, false],
        [999, 2, false],
        [600, 700, false],
        [1500, 400, false],
        [1, 3, false],
        [0, 0, false],
      ];
      for (const [fromSeq, limit, last] of ranges) {
        const from = last ? total - limit : fromSeq;
        const to = limit === 0 ? total : from + limit;
        expect(
          await readMessages(storage, "long", { fromSeq, limit, last }),
          `${pass}: from ${fromSeq}, limit ${limit}, last ${last}`,
        ).toStrictEqual(expected.slice(from, to));
      }
    }
  });
});

/** How many of this process's open file descriptors point into `directory` (Linux only). */
async function openFilesUnder(directory: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(`${directory}/`) && !target.includes("/.sessionstore/journal/")) count++;
  }
  return count;
}
