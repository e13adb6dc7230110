import { appendFile, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { Code } from "../../src/errors.js";
import { readLikeMotosan } from "../helpers/test-server.js";
import {
  appendOnce,
  numberedMessages,
  readMessages,
  rejection,
  TRICKY_MESSAGES,
} from "./conformance.js";
import { damageRecord, indexFile, linesOf, useDataDirectory } from "./jsonl-support.js";

/**
 * What the JSONL backend finds when it opens a file: what a crash left, what someone changed,
 * and its sidecar index missing, stale or right.
 */
describe("JsonlFileStorage recovery", () => {
  const data = useDataDirectory();

  /** A session "s" of `count` numbered messages, written durably, the storage then closed. */
  async function writeSession(count: number, sessionId = "s"): Promise<void> {
    const storage = await data.openStorage();
    await appendOnce(storage, sessionId, numberedMessages(0, count), { sync: true });
    await storage.close();
  }

  it("gives the same metadata and messages after a reopen", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "kept", TRICKY_MESSAGES);
    await appendOnce(storage, "kept", numberedMessages(3, 4), { sync: true });
    const before = await storage.meta("kept");
    const reopened = await data.reopen(storage);
    expect(await reopened.meta("kept")).toMatchObject({
      createdAtMs: before?.createdAtMs,
      messageCount: 7,
      durableCount: 7,
    });
    expect(await readMessages(reopened, "kept")).toStrictEqual([
      ...TRICKY_MESSAGES,
      ...numberedMessages(3, 4),
    ]);
  });

  it("validates and indexes whole records a crash left after the indexed ones", async () => {
    await writeSession(3);
    // The process died after appending lines, before indexing them.
    await appendFile(data.file("s"), `${numberedMessages(3, 2).join("\n")}\n`);
    const storage = await data.openStorage();
    expect(await storage.meta("s")).toMatchObject({ messageCount: 5, durableCount: 5 });
    expect(await readMessages(storage, "s")).toStrictEqual(numberedMessages(0, 5));
    await appendOnce(storage, "s", numberedMessages(5, 1), { sync: true });
    expect(await readMessages(await data.reopen(storage), "s")).toStrictEqual(
      numberedMessages(0, 6),
    );
  });

  it("cuts off a partial last record a crash left, and never serves it", async () => {
    await writeSession(3);
    const partial = '{"n":4,"tag":"torn';
    await appendFile(data.file("s"), `${numberedMessages(3, 1)[0]}\n${partial}`);
    const storage = await data.openStorage();
    expect(await readMessages(storage, "s")).toStrictEqual(numberedMessages(0, 4));
    expect(await data.readText("s")).not.toContain(partial);
    await appendOnce(storage, "s", ['{"n":4,"tag":"whole"}'], { sync: true });
    expect(await readMessages(storage, "s", { fromSeq: 3 })).toStrictEqual([
      numberedMessages(3, 1)[0],
      '{"n":4,"tag":"whole"}',
    ]);
  });

  it("refuses with DATA_LOSS, keeping the file, a bad record with valid ones after it", async () => {
    await writeSession(2);
    await appendFile(
      data.file("s"),
      `${numberedMessages(2, 1)[0]}\nnot json\n${numberedMessages(4, 1)[0]}\n`,
    );
    const text = await data.readText("s");
    const storage = await data.openStorage();
    expect(await readMessages(storage, "s", { limit: 3 })).toStrictEqual(numberedMessages(0, 3));
    const error = await rejection(readMessages(storage, "s"));
    expect(error.code).toBe(Code.DataLoss);
    expect(error.message).toMatch(/\bseq 3\b/);
    expect((await rejection(appendOnce(storage, "s", ["{}"]))).code).toBe(Code.DataLoss);
    expect(await data.readText("s")).toBe(text);
  });

  describe("a record that is not what was appended", () => {
    it("refuses {XXXX…} of the same length with DATA_LOSS naming its seq, also after a restart", async () => {
      await writeSession(6);
      await damageRecord(data.directory, "s", 2);
      const storage = await data.openStorage();
      expect(await readMessages(storage, "s", { limit: 2 })).toStrictEqual(numberedMessages(0, 2));
      expect(await readMessages(storage, "s", { fromSeq: 3 })).toStrictEqual(
        numberedMessages(3, 3),
      );
      const error = await rejection(readMessages(storage, "s"));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.message).toMatch(/\bseq 2\b/);
      // Never a server path in what a client is told.
      expect(error.message).not.toContain(data.directory);
    });

    it("refuses a record an editor split into two objects, without shifting the seqs after it", async () => {
      await writeSession(5);
      const text = await data.readText("s");
      const record = numberedMessages(1, 1)[0] as string;
      // Two objects in the same bytes: the file's size and the line count after it stay valid.
      const split = '{"n":1}\n{"g":"m"}';
      expect(split).toHaveLength(record.length);
      await writeFile(data.file("s"), text.replace(record, split));
      const storage = await data.openStorage();
      expect(await readMessages(storage, "s", { fromSeq: 2 })).toStrictEqual(
        numberedMessages(2, 3),
      );
      const error = await rejection(readMessages(storage, "s"));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.message).toMatch(/\bseq 1\b/);
      expect((await storage.meta("s"))?.messageCount).toBe(5);
    });

    it("refuses a record damaged while the server runs", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 4), { sync: true });
      expect(await readMessages(storage, "s")).toStrictEqual(numberedMessages(0, 4));
      await damageRecord(data.directory, "s", 3);
      const error = await rejection(readMessages(storage, "s", { fromSeq: 3 }));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.message).toMatch(/\bseq 3\b/);
    });

    it("reports durable records missing from the file, rather than forgetting them", async () => {
      await writeSession(5);
      const lines = linesOf(await data.readText("s"));
      // Someone cut the last two records off (the index says all five were durable).
      await writeFile(data.file("s"), `${lines.slice(0, 4).join("\n")}\n`);
      const storage = await data.openStorage();
      const error = await rejection(readMessages(storage, "s"));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.message).toMatch(/\bseq 3\b/);
    });
  });

  describe("the index", () => {
    it("is rebuilt by a full validating scan when missing", async () => {
      await writeSession(30);
      await rm(indexFile(data.directory, "s"));
      const storage = await data.openStorage();
      expect(await readMessages(storage, "s", { fromSeq: 10, limit: 5 })).toStrictEqual(
        numberedMessages(10, 5),
      );
      expect((await stat(indexFile(data.directory, "s"))).size).toBe(32 + 30 * 16);
    });

    it("is rebuilt for a file replaced as a whole: a backup moved into place", async () => {
      await writeSession(8);
      const backup = `${data.file("s")}.bak`;
      await writeFile(backup, await readFile(data.file("s")));
      await truncate(
        backup,
        (await data.readText("s")).indexOf(numberedMessages(5, 1)[0] as string),
      );
      await rename(backup, data.file("s"));
      const storage = await data.openStorage();
      expect(await readMessages(storage, "s")).toStrictEqual(numberedMessages(0, 5));
      expect((await storage.meta("s"))?.messageCount).toBe(5);
    });

    it("is rebuilt for a motosan file that motosan rewrote since the server indexed it", async () => {
      await data.copyFixture("agent-7f3a");
      let storage = await data.openStorage();
      await appendOnce(storage, "agent-7f3a", numberedMessages(5, 1), { sync: true });
      await storage.close();
      // motosan's flush rewrites the whole file in place: new header, every message reserialized.
      const messages = readLikeMotosan(await data.readText("agent-7f3a")).map((m) =>
        JSON.stringify(m),
      );
      const header = JSON.stringify({
        session_id: "agent-7f3a",
        created_at_ms: 1_800_000_000_000,
        agent_loop_version: "0.7.1",
        message_count: messages.length + 1,
      });
      await writeFile(
        data.file("agent-7f3a"),
        `${[header, ...messages, '{"role":"User","content":"more"}'].join("\n")}\n`,
      );
      storage = await data.openStorage();
      expect(await readMessages(storage, "agent-7f3a")).toStrictEqual([
        ...messages,
        '{"role":"User","content":"more"}',
      ]);
    });
  });
});
