import { appendFile, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import { textsOf } from "../helpers/message-bytes.js";
import { readLikeMotosan } from "../helpers/test-server.js";
import { appendOnce, numberedMessages, readMessages, rejection } from "./conformance.js";
import { damageRecord, headerOf, linesOf, useDataDirectory } from "./jsonl-support.js";

/** Lets the clock move on, so that successive writes get distinct times. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/**
 * The file backend's Fork, Rewind and Trim as files: what each leaves on disk (hard-linked
 * pieces, rewritten files), what motosan reads of them, and what survives a restart.
 */
describe("JsonlFileStorage forks, rewinds and trims on disk", () => {
  const data = useDataDirectory();
  const piecesOf = (sessionId: string) => join(data.directory, ".sessionstore", "forks", sessionId);

  it("forks by hard-linking the source's file: the fork's own file holds only its own messages", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "src", numberedMessages(0, 5));
    const fork = await storage.fork("src", 3, "branch", {});
    expect(fork).toMatchObject({ messageCount: 3, parent: { sessionId: "src", seq: 3 } });
    await appendOnce(storage, "branch", ['{"branch":3}'], { expectedSeq: 3, sync: true });
    await storage.flush("branch");

    // The shared prefix is the source's own inode, linked, not copied.
    const linked = await stat(join(piecesOf("branch"), "0.jsonl"));
    const source = await stat(data.file("src"));
    expect(linked.ino).toBe(source.ino);
    expect(source.nlink).toBe(2);
    expect((await stat(join(piecesOf("branch"), "0.idx"))).nlink).toBe(2);

    const text = await data.readText("branch");
    expect(headerOf(text)).toMatchObject({
      session_id: "branch",
      message_count: 1,
      first_seq: 0,
      parent_session_id: "src",
      parent_seq: 3,
      pieces: [{ name: "0", base: 0, from: 0, to: 3 }],
    });
    // What motosan reads of the fork's file: its own messages only.
    expect(readLikeMotosan(text)).toStrictEqual([{ branch: 3 }]);
    expect(await readMessages(storage, "branch")).toStrictEqual([
      ...numberedMessages(0, 3),
      '{"branch":3}',
    ]);
    expect(await readMessages(storage, "branch", { fromSeq: 2, limit: 2 })).toStrictEqual([
      ...numberedMessages(2, 1),
      '{"branch":3}',
    ]);
  });

  it("keeps a fork whole when its source is rewound, trimmed and deleted, and a fork of it too", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "src", numberedMessages(0, 6), { sync: true });
    await storage.fork("src", 4, "f1", {});
    await appendOnce(storage, "f1", ['{"f1":4}']);
    await storage.fork("f1", 5, "f2", {});
    const inodeBefore = (await stat(data.file("src"))).ino;

    await storage.rewind("src", 1);
    await appendOnce(storage, "src", ['{"src":1}'], { sync: true });
    // A rewind renames a new file into place: the fork's link keeps the old one, whole.
    expect((await stat(data.file("src"))).ino).not.toBe(inodeBefore);
    expect((await stat(join(piecesOf("f1"), "0.jsonl"))).ino).toBe(inodeBefore);
    await storage.trim("src", 1);
    expect(await storage.delete("src")).toBe(true);

    const f1 = [...numberedMessages(0, 4), '{"f1":4}'];
    expect(await readMessages(storage, "f1")).toStrictEqual(f1);
    expect(await readMessages(storage, "f2")).toStrictEqual(f1);
    // The fork of a fork links the pieces again: the source's file and f1's own.
    expect((await readdir(piecesOf("f2"))).sort()).toStrictEqual([
      "0.idx",
      "0.jsonl",
      "1.idx",
      "1.jsonl",
    ]);

    expect(await storage.delete("f1")).toBe(true);
    await expect(stat(piecesOf("f1"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readMessages(storage, "f2")).toStrictEqual(f1);

    const reopened = await data.reopen(storage);
    expect(await readMessages(reopened, "f2")).toStrictEqual(f1);
    expect(await reopened.meta("f2")).toMatchObject({
      messageCount: 5,
      firstSeq: 0,
      parent: { sessionId: "f1", seq: 5 },
    });
  });

  it("trims by rewriting the file: seqs, first_seq and lineage survive a restart", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "t", numberedMessages(0, 6), { sync: true });
    await storage.fork("t", 5, "tf", {});
    await appendOnce(storage, "tf", ['{"tf":5}'], { sync: true });
    await storage.trim("tf", 2);
    await storage.trim("t", 3);

    const text = await data.readText("t");
    expect(headerOf(text)).toMatchObject({ first_seq: 3, message_count: 3 });
    expect(readLikeMotosan(text)).toStrictEqual(
      numberedMessages(3, 3).map((line) => JSON.parse(line)),
    );
    const reopened = await data.reopen(storage);
    expect(await reopened.meta("t")).toMatchObject({ firstSeq: 3, messageCount: 6 });
    expect(await readMessages(reopened, "t", { fromSeq: 4 })).toStrictEqual(numberedMessages(4, 2));
    expect((await rejection(readMessages(reopened, "t", { fromSeq: 1 }))).firstSeq).toBe(3);
    expect(await reopened.meta("tf")).toMatchObject({
      firstSeq: 2,
      messageCount: 6,
      parent: { sessionId: "t", seq: 5 },
    });
    expect(await readMessages(reopened, "tf")).toStrictEqual([
      ...numberedMessages(2, 3),
      '{"tf":5}',
    ]);
    // Trimmed past its pieces, the fork holds its messages in its own file, and unlinks them.
    await reopened.trim("tf", 5);
    expect(await readdir(piecesOf("tf"))).toStrictEqual([]);
    expect(readLikeMotosan(await data.readText("tf"))).toStrictEqual([{ tf: 5 }]);
    expect(await readMessages(reopened, "tf")).toStrictEqual(['{"tf":5}']);
  });

  it("trims a motosan file dropped into the directory, which motosan then reads from the first kept message", async () => {
    await data.copyFixture("agent-7f3a");
    const lines = await data.fixtureLines("agent-7f3a");
    const storage = await data.openStorage();
    expect((await storage.trim("agent-7f3a", 2)).trimmed).toBe(2);
    const text = await data.readText("agent-7f3a");
    expect(headerOf(text)).toMatchObject({
      session_id: "agent-7f3a",
      created_at_ms: 1_731_000_000_000,
      agent_loop_version: "0.7.1",
      message_count: 3,
      first_seq: 2,
    });
    expect(linesOf(text).slice(1)).toStrictEqual(lines.slice(3));
    expect(readLikeMotosan(text)).toStrictEqual(lines.slice(3).map((line) => JSON.parse(line)));
    await appendOnce(storage, "agent-7f3a", numberedMessages(5, 1), { expectedSeq: 5 });
    const reopened = await data.reopen(storage);
    expect(await readMessages(reopened, "agent-7f3a")).toStrictEqual([
      ...lines.slice(3),
      ...numberedMessages(5, 1),
    ]);
    expect(await reopened.meta("agent-7f3a")).toMatchObject({ firstSeq: 2, messageCount: 6 });
  });

  it("rewrites CRLF lines and blank lines byte for byte, and long sessions in chunks", async () => {
    const lines = await data.fixtureLines("agent-7f3a");
    await data.copyFixture("agent-7f3a", (text) => text.replace(/\n/g, "\r\n\n"));
    const storage = await data.openStorage();
    await storage.trim("agent-7f3a", 1);
    expect(await readMessages(storage, "agent-7f3a")).toStrictEqual(lines.slice(2));
    expect(await data.readText("agent-7f3a")).toContain(`${lines[2]}\r\n\n${lines[3]}`);

    const many = numberedMessages(0, 9000);
    for (let from = 0; from < many.length; from += 1000) {
      await appendOnce(storage, "long", many.slice(from, from + 1000));
    }
    await storage.trim("long", 100);
    await storage.rewind("long", 8990);
    const reopened = await data.reopen(storage);
    expect(await readMessages(reopened, "agent-7f3a")).toStrictEqual(lines.slice(2));
    expect(await readMessages(reopened, "long")).toStrictEqual(many.slice(100, 8990));
    expect(await readMessages(reopened, "long", { fromSeq: 8000, limit: 3 })).toStrictEqual(
      many.slice(8000, 8003),
    );
  });

  it("never replaces a file that changed under the server: the rewind fails, the file stays", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "moved", numberedMessages(0, 4), { sync: true });
    // Someone else appends a line (same inode, so no directory event tells the server).
    await appendFile(data.file("moved"), '{"outside":4}\n');
    const refused = await rejection(storage.rewind("moved", 1));
    expect(refused.code).toBe(Code.Unavailable);
    expect(linesOf(await data.readText("moved")).slice(1)).toStrictEqual([
      ...numberedMessages(0, 4),
      '{"outside":4}',
    ]);
    // Read anew, the session is the file as it is now, and a rewind works on it.
    expect(await readMessages(storage, "moved")).toHaveLength(5);
    expect(textsOf((await storage.rewind("moved", 4, 5)).dropped)).toStrictEqual(['{"outside":4}']);
  });

  it("never links a file that replaced the source's under the server as the one it knew", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "restored", numberedMessages(0, 4), { sync: true });
    // A backup restored by rename: a new inode under the same name, with other messages.
    const backup = `${JSON.stringify({ session_id: "restored", created_at_ms: 1, agent_loop_version: "0.7.1", message_count: 3 })}\n${numberedMessages(0, 3, "b").join("\n")}\n`;
    await writeFile(join(data.directory, "backup.tmp"), backup);
    await rename(join(data.directory, "backup.tmp"), data.file("restored"));
    const forked = await storage.fork("restored", 2, "copy", {}).then(
      (meta) => meta,
      (error: SessionStoreError) => error,
    );
    if (forked instanceof SessionStoreError) {
      expect(forked.code).toBe(Code.Unavailable);
      expect(await storage.meta("copy")).toBeUndefined();
    } else {
      // The server saw the new file first: the fork is of it.
      expect(await readMessages(storage, "copy")).toStrictEqual(numberedMessages(0, 2, "b"));
    }
    expect(await data.readText("restored")).toBe(backup);
    expect(await readMessages(storage, "restored")).toStrictEqual(numberedMessages(0, 3, "b"));
  });

  it("refuses a fork's damaged shared record with DATA_LOSS until a trim drops it", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "s", numberedMessages(0, 4), { sync: true });
    await storage.fork("s", 4, "f", {});
    await appendOnce(storage, "f", ['{"f":4}'], { sync: true });
    // The fork shares the source's inode: damage there is the fork's too.
    await damageRecord(data.directory, "s", 1);
    const damaged = await rejection(readMessages(storage, "f"));
    expect(damaged.code).toBe(Code.DataLoss);
    expect(damaged.message).toContain("seq 1");
    expect((await rejection(storage.trim("f", 1))).code).toBe(Code.DataLoss);
    expect((await storage.trim("f", 2)).trimmed).toBe(2);
    expect(await readMessages(storage, "f")).toStrictEqual([...numberedMessages(2, 2), '{"f":4}']);
    await appendOnce(storage, "f", ['{"f":5}'], { expectedSeq: 5 });
    expect((await rejection(readMessages(storage, "s"))).code).toBe(Code.DataLoss);
  });

  it("places a request made during a rewind in the rewound log: ABORTED if its expected_seq no longer fits", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "race", numberedMessages(0, 5));
    const rewinding = storage.rewind("race", 2, 5);
    // The rewind has its place (it writes and fsyncs the buffered messages first).
    await new Promise((resolve) => setImmediate(resolve));
    const stale = appendOnce(storage, "race", ['{"stale":5}'], { expectedSeq: 5, sync: true });
    const free = appendOnce(storage, "race", ['{"free":2}'], { sync: true });
    expect(textsOf((await rewinding).dropped)).toStrictEqual(numberedMessages(2, 3));
    const aborted = await rejection(stale);
    expect(aborted.code).toBe(Code.Aborted);
    expect(aborted.actualLength).toBeLessThanOrEqual(3);
    expect(await free).toMatchObject({ firstSeq: 2, nextSeq: 3 });
    expect(await readMessages(storage, "race")).toStrictEqual([
      ...numberedMessages(0, 2),
      '{"free":2}',
    ]);
  });

  it("ends a read that a rewind overtakes with ABORTED, and reads through a trim that leaves its range", async () => {
    const storage = await data.openStorage();
    const many = Array.from({ length: 3000 }, (_, n) => `{"n":${n},"pad":"${"x".repeat(300)}"}`);
    await appendOnce(storage, "paged", many, { sync: true });

    const trimmed: string[] = [];
    const reading = storage.read("paged", { fromSeq: 1000, limit: 0, last: false });
    for await (const page of reading) {
      if (trimmed.length === 0) await storage.trim("paged", 500);
      trimmed.push(...textsOf(page.messages));
    }
    expect(trimmed).toStrictEqual(many.slice(1000));

    const rewound: string[] = [];
    const overtaken = (async () => {
      for await (const page of storage.read("paged", { fromSeq: 0, limit: 0, last: false })) {
        if (rewound.length === 0) await storage.rewind("paged", 2000);
        rewound.push(...textsOf(page.messages));
      }
    })();
    expect((await rejection(overtaken)).code).toBe(Code.Aborted);
    // What it served before the rewind was the session as it was: no mix.
    expect(rewound).toStrictEqual(many.slice(500, 500 + rewound.length));
    expect(await readMessages(storage, "paged")).toStrictEqual(many.slice(500, 2000));
  });

  it("answers firstSeqSince from write times kept across a restart, and never above the exact seq without them", async () => {
    const storage = await data.openStorage();
    await appendOnce(storage, "aged", numberedMessages(0, 3), { sync: true });
    await tick();
    const since = Date.now();
    await tick();
    await appendOnce(storage, "aged", numberedMessages(3, 2), { sync: true });
    let reopened = await data.reopen(storage);
    expect(await reopened.firstSeqSince("aged", since)).toBe(3);
    expect(await reopened.firstSeqSince("aged", Date.now() + 1000)).toBe(5);

    await reopened.close();
    await unlink(join(data.directory, ".sessionstore", "index", "aged.times"));
    reopened = await data.openStorage();
    // Without its times, the file's modification time stands for them all: never older.
    expect(await reopened.firstSeqSince("aged", since)).toBe(0);
  });

  it("reads a fork of forks whose header lists more pieces than 4 KiB hold", async () => {
    const storage = await data.openStorage();
    let previous = "deep-0";
    await appendOnce(storage, previous, numberedMessages(0, 1));
    for (let depth = 1; depth <= 110; depth++) {
      const id = `deep-${depth}`;
      await storage.fork(previous, depth, id, {});
      await appendOnce(storage, id, numberedMessages(depth, 1), { expectedSeq: depth });
      previous = id;
    }
    expect(linesOf(await data.readText(previous))[0]?.length).toBeGreaterThan(4096);
    const reopened = await data.reopen(storage);
    expect(await readMessages(reopened, previous)).toStrictEqual(numberedMessages(0, 111));
  });

  it("removes what a rewrite left under .sessionstore/tmp when the server starts", async () => {
    const tmp = join(data.directory, ".sessionstore", "tmp");
    const storage = await data.openStorage();
    await appendOnce(storage, "s", numberedMessages(0, 2), { sync: true });
    await storage.close();
    await writeFile(join(tmp, "s.0123456789ab.jsonl"), "partial");
    await data.openStorage();
    expect(await readdir(tmp)).toStrictEqual([]);
    expect(await readFile(data.file("s"), "utf8")).toContain(numberedMessages(1, 1)[0]);
  });
});
