import { cp, readFile, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { journalSegments } from "../../src/store/jsonl/journal.js";
import { decodeSegment, encodeRecord } from "../../src/store/jsonl/journal-records.js";
import { replayJournal } from "../../src/store/jsonl/journal-replay.js";
import { appendOnce, numberedMessages, readMessages } from "./conformance.js";
import {
  type JsonlStorage,
  linesOf,
  makeTempDir,
  newStorage,
  sessionFile,
  useDataDirectory,
} from "./jsonl-support.js";

const silent = pino({ level: "silent" });

function journalDirectory(directory: string): string {
  return join(directory, ".sessionstore", "journal");
}

describe("journal records", () => {
  const records = [
    { kind: "append", path: "a.jsonl", inode: 42, start: 300, bytes: Buffer.from('{"x":1}\n') },
    { kind: "forget", path: "tenants/acme/b.jsonl", inode: 7 },
    { kind: "append", path: "tenants/acme/b.jsonl", inode: 8, start: 0, bytes: Buffer.from("é\n") },
  ] as const;
  const segment = Buffer.concat(records.flatMap((record) => encodeRecord(record)));

  it("reads back what was written", () => {
    expect(decodeSegment(segment)).toStrictEqual({ records, validBytes: segment.length });
  });

  it("stops at a torn tail wherever a crash cut the segment", () => {
    const ends = records.map(
      (_, i) => Buffer.concat(records.slice(0, i + 1).flatMap((r) => encodeRecord(r))).length,
    );
    for (let cut = 0; cut < segment.length; cut++) {
      const whole = ends.filter((end) => end <= cut).length;
      const decoded = decodeSegment(segment.subarray(0, cut));
      expect(decoded.records).toStrictEqual(records.slice(0, whole));
      expect(decoded.validBytes).toBe(whole === 0 ? 0 : ends[whole - 1]);
    }
  });

  it("stops at a record whose bytes changed", () => {
    const damaged = Buffer.from(segment);
    const second = encodeRecord(records[0]).reduce((sum, part) => sum + part.length, 0);
    damaged[second + 12] = (damaged[second + 12] as number) ^ 0x20;
    expect(decodeSegment(damaged).records).toStrictEqual([records[0]]);
  });
});

describe("the file backend's journal", () => {
  const data = useDataDirectory();
  const copies: string[] = [];
  afterEach(async () => {
    for (const copy of copies.splice(0)) await rm(copy, { recursive: true, force: true });
  });

  /**
   * What a kill leaves of the running server's directory: a copy of it, made while it runs, so
   * its journal was not checkpointed. (The copy's files have new inodes: the journal, which
   * names the files it wrote to by inode, replays nothing into them.)
   */
  async function crashCopy(): Promise<string> {
    const copy = await makeTempDir("jsonl-journal-crash-");
    copies.push(copy);
    await cp(data.directory, copy, {
      recursive: true,
      filter: (source) => !source.endsWith(".lock"),
    });
    return copy;
  }

  /**
   * The journal's segments as the running server left them, copied aside: what the server
   * journals after this (such as forgetting a file the test then changes) is not in them.
   */
  async function snapshotSegments(): Promise<string[]> {
    const aside = await makeTempDir("jsonl-journal-segments-");
    copies.push(aside);
    const segments = await journalSegments(journalDirectory(data.directory));
    for (const segment of segments) await cp(segment, join(aside, basename(segment)));
    return journalSegments(aside);
  }

  async function openOn(directory: string): Promise<JsonlStorage> {
    const storage = newStorage(directory);
    await storage.open();
    return storage;
  }

  /** Sessions created with one durable append each (an fsync of their own file), and their sizes then. */
  async function createSessions(storage: JsonlStorage, ids: readonly string[]) {
    const sizes = new Map<string, number>();
    for (const id of ids) {
      await appendOnce(storage, id, numberedMessages(0, 1, id), { sync: true });
      sizes.set(id, (await stat(data.file(id))).size);
    }
    return sizes;
  }

  it("makes the durable appends of many sessions durable with a few journal fsyncs, not one per file", async () => {
    const storage = await data.openStorage();
    const ids = Array.from({ length: 32 }, (_, i) => `s${i}`);
    await createSessions(storage, ids);
    const { fileSyncs, writes } = storage.backend.stats;
    const syncsBefore = storage.backend.journalStats.syncs;
    const acks = await Promise.all(
      ids.map((id) => appendOnce(storage, id, numberedMessages(1, 3, id), { sync: true })),
    );
    expect(acks.map((ack) => ack.durableCount)).toStrictEqual(ids.map(() => 4));
    // Neither fsyncs nor even writes of the session files: the journal alone made them durable.
    expect(storage.backend.stats).toMatchObject({ fileSyncs, writes });
    expect(storage.backend.journalStats.syncs - syncsBefore).toBeLessThan(ids.length / 4);
    for (const id of ids) {
      expect((await storage.meta(id))?.durableCount).toBe(4);
      expect(await readMessages(storage, id)).toStrictEqual(numberedMessages(0, 4, id));
    }
    // Flush brings the files up to date, each in one write.
    await storage.flush();
    expect(storage.backend.stats.writes).toBe(writes + ids.length);
    for (const id of ids) {
      expect(linesOf(await data.readText(id)).slice(1)).toStrictEqual(numberedMessages(0, 4, id));
    }
  });

  it("replays into session files the bytes they lost, exactly, however often it runs", async () => {
    const storage = await data.openStorage();
    const ids = ["plain", "colon:id@x~y.z", "long"];
    const sizes = await createSessions(storage, ids);
    for (const id of ids) {
      const messages = numberedMessages(1, id === "long" ? 400 : 5, id);
      for (let i = 0; i < messages.length; i += 50) {
        await appendOnce(storage, id, messages.slice(i, i + 50), { sync: true });
      }
    }
    const segments = await snapshotSegments();
    // The files as the server writes them in the end (after the journal, in its own time).
    await storage.close();
    const whole = await Promise.all(ids.map((id) => readFile(data.file(id))));
    // What a crash leaves: each file as its own last fsync left it (its first record).
    for (const id of ids) await truncate(data.file(id), sizes.get(id) as number);
    const first = await replayJournal(data.directory, segments, silent);
    expect(first).toMatchObject({ files: 3, tornBytes: 0 });
    expect(await Promise.all(ids.map((id) => readFile(data.file(id))))).toStrictEqual(whole);
    // A replay killed halfway leaves a file partly replayed: replaying again mends it.
    await truncate(data.file("long"), (sizes.get("long") as number) + 1000);
    expect((await replayJournal(data.directory, segments, silent)).files).toBe(1);
    expect((await replayJournal(data.directory, segments, silent)).replayed).toBe(0);
    expect(await Promise.all(ids.map((id) => readFile(data.file(id))))).toStrictEqual(whole);
    const reopened = await data.openStorage();
    for (const id of ids) {
      expect((await reopened.meta(id))?.durableCount).toBe(id === "long" ? 401 : 6);
    }
  });

  it("journals that a rewound or deleted session's earlier bytes must not be replayed", async () => {
    const storage = await data.openStorage();
    await createSessions(storage, ["rewound", "deleted"]);
    for (const id of ["rewound", "deleted"]) {
      await appendOnce(storage, id, numberedMessages(1, 9, id), { sync: true });
    }
    await storage.rewind("rewound", 3);
    await storage.delete("deleted");
    const [segment] = await journalSegments(journalDirectory(data.directory));
    const { records } = decodeSegment(await readFile(segment as string));
    expect(records.map((record) => `${record.kind} ${record.path}`)).toStrictEqual([
      "append rewound.jsonl",
      "append deleted.jsonl",
      "forget rewound.jsonl",
      "forget deleted.jsonl",
    ]);
  });

  it("replays nothing of a file from before its forget record, and what follows it by offset", async () => {
    const directory = data.directory;
    const path = join(directory, "f.jsonl");
    await writeFile(path, "header\n");
    const { ino } = await stat(path);
    const record = (text: string, start: number) =>
      encodeRecord({
        kind: "append",
        path: "f.jsonl",
        inode: ino,
        start,
        bytes: Buffer.from(text),
      });
    const segment = join(directory, "0000000000000001.journal");
    await writeFile(
      segment,
      Buffer.concat([
        ...record("dropped\n", 7),
        ...encodeRecord({ kind: "forget", path: "f.jsonl", inode: ino }),
        // Journaled out of order (a checkpoint journals again what is still ahead of the file).
        ...record("ept\n", 8),
        ...record("k", 7),
        ...encodeRecord({
          kind: "append",
          path: "f.jsonl",
          inode: ino + 1,
          start: 12,
          bytes: Buffer.from("other file\n"),
        }),
      ]),
    );
    await replayJournal(directory, [segment], silent);
    expect(await readFile(path, "utf8")).toBe("header\nkept\n");
  });

  it("starts after a torn journal tail, ignoring the record a crash tore", async () => {
    const storage = await data.openStorage();
    await createSessions(storage, ["torn"]);
    await appendOnce(storage, "torn", numberedMessages(1, 4, "torn"), { sync: true });
    // The copy's files have new inodes, so its journal is not replayed into them: flushed
    // first, they hold everything themselves.
    await storage.flush();
    const copy = await crashCopy();
    const [segment] = await journalSegments(journalDirectory(copy));
    const whole = await readFile(segment as string);
    const torn = encodeRecord({
      kind: "append",
      path: "torn.jsonl",
      inode: 1,
      start: 0,
      bytes: Buffer.from('{"never":"acknowledged"}\n'),
    });
    await writeFile(
      segment as string,
      Buffer.concat([whole, ...torn]).subarray(0, whole.length + 20),
    );

    const recovered = await openOn(copy);
    try {
      expect(await readMessages(recovered, "torn")).toStrictEqual(numberedMessages(0, 5, "torn"));
      await appendOnce(recovered, "torn", ['{"more":1}'], { sync: true });
    } finally {
      await recovered.close();
    }
    const again = await openOn(copy);
    try {
      expect(await readMessages(again, "torn")).toStrictEqual([
        ...numberedMessages(0, 5, "torn"),
        '{"more":1}',
      ]);
    } finally {
      await again.close();
    }
  });

  it("follows no link and fills no gap when the files changed outside the server", async () => {
    const storage = await data.openStorage();
    const sizes = await createSessions(storage, ["linked", "cut"]);
    for (const id of ["linked", "cut"]) {
      await appendOnce(storage, id, numberedMessages(1, 5, id), { sync: true });
    }
    const segments = await snapshotSegments();
    await storage.close();
    const copy = data.directory;
    const outside = join(await makeTempDir("jsonl-journal-outside-"), "victim.jsonl");
    copies.push(join(outside, ".."));
    // As long as the file the link replaced: a replay through the link would write into it.
    const victim = `${"k".repeat((sizes.get("linked") as number) - 1)}\n`;
    await writeFile(outside, victim);
    await rm(sessionFile(copy, "linked"));
    await symlink(outside, sessionFile(copy, "linked"));
    // Cut to before the journaled bytes start (less than the first record): a gap the journal cannot fill.
    await truncate(sessionFile(copy, "cut"), (sizes.get("cut") as number) - 5);

    const summary = await replayJournal(copy, segments, silent);
    expect(summary.replayed).toBe(0);
    expect(await readFile(outside, "utf8")).toBe(victim);
    expect((await stat(sessionFile(copy, "cut"))).size).toBe((sizes.get("cut") as number) - 5);
  });

  it("checkpoints: a full segment fsyncs its files and is deleted, so the journal stays bounded", async () => {
    const storage = await data.openStorage({
      journal: { segmentBytes: 2048, checkpointIntervalMs: 60_000 },
    });
    await createSessions(storage, ["busy", "other"]);
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        ["busy", "other"].map((id) =>
          appendOnce(storage, id, numberedMessages(1 + round * 5, 5, id), { sync: true }),
        ),
      );
    }
    await expect.poll(() => storage.backend.journalStats.checkpoints).toBeGreaterThan(2);
    const segments = await journalSegments(journalDirectory(data.directory));
    expect(segments.length).toBeLessThanOrEqual(2);
    for (const segment of segments) expect((await stat(segment)).size).toBeLessThan(8 << 10);
    expect(storage.backend.stats.fileSyncs).toBeGreaterThan(2 + 3);
    const reopened = await data.reopen(storage);
    for (const id of ["busy", "other"]) {
      expect(await readMessages(reopened, id)).toStrictEqual(numberedMessages(0, 201, id));
    }
  });
});
