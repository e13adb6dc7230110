import { describe, expect, it } from "vitest";
import { Code } from "../../src/errors.js";
import { parseSelector } from "../../src/labels.js";
import type { ListOrder, SessionChange } from "../../src/store/storage.js";
import { textsOf } from "../helpers/message-bytes.js";
import type { RootTenantStorage } from "../helpers/root-tenant.js";
import {
  appendOnce,
  numberedMessages,
  readMessages,
  rejection,
  type StorageFixture,
} from "./conformance.js";

/** What the lineage tests need of the suite around them, looked up at each test. */
export interface LineageContext {
  storage(): RootTenantStorage;
  fixture(): StorageFixture;
  /** The same stored data in a new backend instance (opened), or undefined when it has none. */
  reopen(): Promise<RootTenantStorage | undefined>;
}

/** Lets the clock move on, so that successive updates get distinct times. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 3));

/**
 * Labels, listing by selector and by update time, Fork, Rewind, Trim and retention by age and
 * idleness: the behaviour every backend has (see src/store/storage.ts).
 */
export function describeLineageConformance(context: LineageContext): void {
  const storage = () => context.storage();

  async function listIds(
    selector: string,
    order: ListOrder = "id",
    options: { prefix?: string; pageSize?: number } = {},
  ): Promise<string[]> {
    const ids: string[] = [];
    let after: { sessionId: string; updatedAtMs: number } | undefined;
    for (;;) {
      const page = await storage().list({
        prefix: options.prefix ?? "",
        selector: parseSelector(selector),
        order,
        after,
        limit: options.pageSize ?? 100,
      });
      ids.push(...page.map((meta) => meta.sessionId));
      const last = page.at(-1);
      if (!last || page.length < (options.pageSize ?? 100)) return ids;
      after = { sessionId: last.sessionId, updatedAtMs: last.updatedAtMs };
    }
  }

  describe("labels", () => {
    it("sets labels given by the creating request, and only by it", async () => {
      await appendOnce(storage(), "labelled", ['{"a":1}'], { labels: { user: "alice" } });
      await appendOnce(storage(), "labelled", ['{"a":2}'], { labels: { user: "bob" } });
      expect(await storage().meta("labelled")).toMatchObject({
        labels: { user: "alice" },
        labelsRevision: 1,
      });
      await appendOnce(storage(), "plain", ['{"a":1}']);
      expect(await storage().meta("plain")).toMatchObject({ labels: {}, labelsRevision: 0 });
    });

    it("sets and removes labels, counting revisions, guarded by an expected revision", async () => {
      await appendOnce(storage(), "s", ['{"a":1}']);
      const set = await storage().setLabels("s", { user: "alice", "example.com/team": "x" });
      expect(set).toMatchObject({
        labels: { "example.com/team": "x", user: "alice" },
        labelsRevision: 1,
        messageCount: 1,
      });
      expect(Object.keys(set.labels)).toStrictEqual(["example.com/team", "user"]);
      const unchanged = await storage().setLabels("s", { user: "alice", gone: "" });
      expect(unchanged.labelsRevision).toBe(1);
      const removed = await storage().setLabels("s", { "example.com/team": "" }, 1);
      expect(removed).toMatchObject({ labels: { user: "alice" }, labelsRevision: 2 });
      const stale = await rejection(storage().setLabels("s", { user: "bob" }, 1));
      expect(stale.code).toBe(Code.Aborted);
      expect(stale.actualLabelsRevision).toBe(2);
      expect((await storage().meta("s"))?.labels).toStrictEqual({ user: "alice" });
      const unknown = await rejection(storage().setLabels("nobody", { user: "x" }));
      expect(unknown.code).toBe(Code.NotFound);
      expect(await storage().meta("nobody")).toBeUndefined();
    });

    it("refuses labels past the bounds, changing nothing", async () => {
      await appendOnce(storage(), "s", ['{"a":1}'], { labels: { keep: "me" } });
      const many = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, "v"]));
      expect((await rejection(storage().setLabels("s", many))).code).toBe(Code.InvalidArgument);
      expect(await storage().meta("s")).toMatchObject({
        labels: { keep: "me" },
        labelsRevision: 1,
      });
    });

    it("lets exactly one of racing label changes with the same expected revision win", async () => {
      await appendOnce(storage(), "raced", ['{"a":1}']);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => storage().setLabels("raced", { winner: `w${i}` }, 0)),
      );
      const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
      expect(won).toHaveLength(1);
      expect((await storage().meta("raced"))?.labelsRevision).toBe(1);
    });

    it("forgets a deleted session's labels: created again, it has none", async () => {
      await appendOnce(storage(), "again", ['{"a":1}'], { labels: { user: "alice" } });
      await storage().delete("again");
      await appendOnce(storage(), "again", ['{"a":2}']);
      expect(await storage().meta("again")).toMatchObject({ labels: {}, labelsRevision: 0 });
      expect(await listIds("user=alice")).toStrictEqual([]);
    });

    it("keeps labels across a reopen", async (test) => {
      await appendOnce(storage(), "kept", ['{"a":1}'], { labels: { user: "alice" } });
      await storage().setLabels("kept", { env: "prod" });
      const reopened = await context.reopen();
      if (!reopened) return test.skip();
      expect(await reopened.meta("kept")).toMatchObject({
        labels: { env: "prod", user: "alice" },
        labelsRevision: 2,
      });
      expect((await reopened.list({ ...byId(), selector: parseSelector("env=prod") })).length).toBe(
        1,
      );
    });
  });

  describe("listing", () => {
    it("lists the sessions a selector matches, by id, across pages", async () => {
      const users = ["alice", "bob", "carol"];
      for (let i = 0; i < 12; i++) {
        const labels: Record<string, string> = { user: users[i % 3] as string };
        if (i % 2 === 0) labels.env = "prod";
        if (i % 4 === 0) labels.draft = "yes";
        await appendOnce(storage(), `s${String(i).padStart(2, "0")}`, ['{"a":1}'], { labels });
      }
      expect(await listIds("user=alice", "id", { pageSize: 2 })).toStrictEqual([
        "s00",
        "s03",
        "s06",
        "s09",
      ]);
      expect(await listIds("user=alice,env=prod")).toStrictEqual(["s00", "s06"]);
      expect(await listIds("user==bob,env!=prod")).toStrictEqual(["s01", "s07"]);
      expect(await listIds("user in (alice, carol),!draft")).toStrictEqual([
        "s02",
        "s03",
        "s05",
        "s06",
        "s09",
        "s11",
      ]);
      expect(await listIds("draft,user notin (alice)")).toStrictEqual(["s04", "s08"]);
      expect(await listIds("user=alice", "id", { prefix: "s0" })).toStrictEqual([
        "s00",
        "s03",
        "s06",
        "s09",
      ]);
      expect(await listIds("user=nobody")).toStrictEqual([]);
      expect(await listIds("")).toHaveLength(12);
    });

    it("lists the most recently appended first, each session once across pages", async () => {
      for (const id of ["a", "b", "c", "d", "e"]) {
        await appendOnce(storage(), id, ['{"a":1}'], { labels: { user: "alice" } });
        await tick();
      }
      await appendOnce(storage(), "b", ['{"a":2}']);
      await tick();
      await storage().setLabels("c", { user: "bob" });
      expect(await listIds("", "updated-desc", { pageSize: 2 })).toStrictEqual([
        "b",
        "e",
        "d",
        "c",
        "a",
      ]);
      expect(await listIds("user=alice", "updated-desc", { pageSize: 1 })).toStrictEqual([
        "b",
        "e",
        "d",
        "a",
      ]);
      const metas = await storage().list({ ...byId(), order: "updated-desc" });
      const times = metas.map((meta) => meta.updatedAtMs);
      expect([...times].sort((x, y) => y - x)).toStrictEqual(times);
    });
  });

  describe("fork", () => {
    it("starts a session with the source's first messages, sharing nothing that changes", async () => {
      await appendOnce(storage(), "src", numberedMessages(0, 5), {
        sync: true,
        labels: { user: "alice", env: "dev" },
      });
      await appendOnce(storage(), "src", numberedMessages(5, 2));
      const fork = await storage().fork("src", 6, "branch", { env: "", try: "b" });
      expect(fork).toMatchObject({
        sessionId: "branch",
        messageCount: 6,
        firstSeq: 0,
        parent: { sessionId: "src", seq: 6 },
        labels: { try: "b", user: "alice" },
      });
      expect(await readMessages(storage(), "branch")).toStrictEqual(numberedMessages(0, 6));
      await appendOnce(storage(), "branch", ['{"branch":6}'], { expectedSeq: 6 });
      await appendOnce(storage(), "src", numberedMessages(7, 1), { expectedSeq: 7 });
      expect(await readMessages(storage(), "src")).toStrictEqual(numberedMessages(0, 8));
      expect(await readMessages(storage(), "branch")).toStrictEqual([
        ...numberedMessages(0, 6),
        '{"branch":6}',
      ]);
      expect((await storage().meta("src"))?.parent).toBeUndefined();
    });

    it("leaves forks whole when the source is deleted, rewound or trimmed", async () => {
      await appendOnce(storage(), "src", numberedMessages(0, 6), { sync: true });
      await storage().fork("src", 4, "f1", {});
      await storage().fork("f1", 3, "f2", {});
      await storage().rewind("src", 1);
      await appendOnce(storage(), "src", ['{"other":1}']);
      expect(await readMessages(storage(), "f1")).toStrictEqual(numberedMessages(0, 4));
      await storage().trim("f1", 2);
      expect(await readMessages(storage(), "f2")).toStrictEqual(numberedMessages(0, 3));
      expect(await storage().delete("src")).toBe(true);
      expect(await storage().delete("f1")).toBe(true);
      expect(await readMessages(storage(), "f2")).toStrictEqual(numberedMessages(0, 3));
      await appendOnce(storage(), "f2", ['{"f2":3}'], { expectedSeq: 3 });
      expect(await storage().meta("f2")).toMatchObject({
        messageCount: 4,
        parent: { sessionId: "f1", seq: 3 },
      });
    });

    it("forks at the end, at 0 and from a trimmed source, and refuses what it cannot", async () => {
      await appendOnce(storage(), "src", numberedMessages(0, 4));
      expect((await storage().fork("src", 4, "whole", {})).messageCount).toBe(4);
      const empty = await storage().fork("src", 0, "empty", {});
      expect(empty).toMatchObject({ messageCount: 0, parent: { sessionId: "src", seq: 0 } });
      expect(await readMessages(storage(), "empty")).toStrictEqual([]);
      await appendOnce(storage(), "empty", ['{"new":0}'], { expectedSeq: 0 });
      expect(await readMessages(storage(), "empty")).toStrictEqual(['{"new":0}']);

      const past = await rejection(storage().fork("src", 5, "past", {}));
      expect(past.code).toBe(Code.OutOfRange);
      expect((await rejection(storage().fork("src", 2, "whole", {}))).code).toBe(
        Code.AlreadyExists,
      );
      expect((await rejection(storage().fork("src", 1, "src", {}))).code).toBe(Code.AlreadyExists);
      expect((await rejection(storage().fork("nobody", 0, "x", {}))).code).toBe(Code.NotFound);
      expect(await storage().meta("past")).toBeUndefined();
      expect(await storage().meta("x")).toBeUndefined();

      await storage().trim("src", 2);
      const below = await rejection(storage().fork("src", 1, "below", {}));
      expect(below.code).toBe(Code.OutOfRange);
      expect(below.firstSeq).toBe(2);
      const trimmedFork = await storage().fork("src", 3, "from-trimmed", {});
      expect(trimmedFork).toMatchObject({ firstSeq: 2, messageCount: 3 });
      expect(await readMessages(storage(), "from-trimmed")).toStrictEqual(numberedMessages(2, 1));
    });

    it("keeps forks, their lineage and their sources across a reopen", async (test) => {
      await appendOnce(storage(), "src", numberedMessages(0, 3), { labels: { user: "alice" } });
      await storage().fork("src", 2, "fork", { try: "1" });
      await appendOnce(storage(), "fork", ['{"fork":2}']);
      await storage().delete("src");
      await storage().flush();
      const reopened = await context.reopen();
      if (!reopened) return test.skip();
      expect(await reopened.meta("fork")).toMatchObject({
        messageCount: 3,
        parent: { sessionId: "src", seq: 2 },
        labels: { try: "1", user: "alice" },
      });
      expect(await readMessages(reopened, "fork")).toStrictEqual([
        ...numberedMessages(0, 2),
        '{"fork":2}',
      ]);
      expect(await reopened.meta("src")).toBeUndefined();
    });
  });

  describe("rewind", () => {
    it("drops the messages from to_seq on and answers them; appends go on from there", async () => {
      await appendOnce(storage(), "r", numberedMessages(0, 3), { sync: true });
      await appendOnce(storage(), "r", numberedMessages(3, 3));
      const rewound = await storage().rewind("r", 2, 6);
      expect(textsOf(rewound.dropped)).toStrictEqual(numberedMessages(2, 4));
      expect(rewound.meta.messageCount).toBe(2);
      expect(await readMessages(storage(), "r")).toStrictEqual(numberedMessages(0, 2));
      const ack = await appendOnce(storage(), "r", ['{"after":2}'], { expectedSeq: 2 });
      expect(ack).toMatchObject({ firstSeq: 2, nextSeq: 3 });
      expect(await readMessages(storage(), "r", { fromSeq: 2 })).toStrictEqual(['{"after":2}']);
      expect(textsOf((await storage().rewind("r", 3)).dropped)).toStrictEqual([]);
    });

    it("refuses a rewind whose expected length is not the session's, dropping nothing", async () => {
      await appendOnce(storage(), "r", numberedMessages(0, 4));
      const stale = await rejection(storage().rewind("r", 1, 3));
      expect(stale.code).toBe(Code.Aborted);
      expect(stale.actualLength).toBe(4);
      expect((await rejection(storage().rewind("r", 5))).code).toBe(Code.OutOfRange);
      expect((await rejection(storage().rewind("nobody", 0))).code).toBe(Code.NotFound);
      expect(await readMessages(storage(), "r")).toStrictEqual(numberedMessages(0, 4));
      await storage().trim("r", 2);
      const trimmed = await rejection(storage().rewind("r", 1));
      expect(trimmed.code).toBe(Code.OutOfRange);
      expect(trimmed.firstSeq).toBe(2);
    });

    it("tells subscribers where the session was rewound to", async () => {
      await appendOnce(storage(), "told", numberedMessages(0, 3));
      const changes: SessionChange[] = [];
      const stop = storage().subscribe("told", (change) => changes.push(change));
      await storage().rewind("told", 1);
      await expect.poll(() => changes).toContainEqual({ kind: "rewound", toSeq: 1 });
      stop();
    });

    it("keeps a rewind across a reopen", async (test) => {
      await appendOnce(storage(), "r", numberedMessages(0, 5), { sync: true });
      await storage().rewind("r", 3);
      await appendOnce(storage(), "r", ['{"after":3}'], { sync: true });
      const reopened = await context.reopen();
      if (!reopened) return test.skip();
      expect(await readMessages(reopened, "r")).toStrictEqual([
        ...numberedMessages(0, 3),
        '{"after":3}',
      ]);
    });
  });

  describe("trim", () => {
    it("drops the first messages keeping every seq; reads below the first kept are refused", async () => {
      await appendOnce(storage(), "t", numberedMessages(0, 6), { sync: true });
      const before = await storage().meta("t");
      await tick();
      const trimmed = await storage().trim("t", 4);
      expect(trimmed.trimmed).toBe(4);
      expect(trimmed.meta).toMatchObject({
        firstSeq: 4,
        messageCount: 6,
        updatedAtMs: before?.updatedAtMs,
      });
      expect(await readMessages(storage(), "t")).toStrictEqual(numberedMessages(4, 2));
      expect(await readMessages(storage(), "t", { fromSeq: 5 })).toStrictEqual(
        numberedMessages(5, 1),
      );
      expect(await readMessages(storage(), "t", { limit: 10, last: true })).toStrictEqual(
        numberedMessages(4, 2),
      );
      const below = await rejection(readMessages(storage(), "t", { fromSeq: 2 }));
      expect(below.code).toBe(Code.OutOfRange);
      expect(below.firstSeq).toBe(4);
      expect((await storage().trim("t", 3)).trimmed).toBe(0);
      expect((await rejection(storage().trim("t", 7))).code).toBe(Code.OutOfRange);
      const ack = await appendOnce(storage(), "t", numberedMessages(6, 1), { expectedSeq: 6 });
      expect(ack.firstSeq).toBe(6);
      expect((await storage().trim("t", 7)).meta).toMatchObject({ firstSeq: 7, messageCount: 7 });
      expect(await readMessages(storage(), "t")).toStrictEqual([]);
      expect((await rejection(storage().trim("nobody", 0))).code).toBe(Code.NotFound);
    });

    it("creates a session at a given first seq, as a copy of a trimmed session does", async () => {
      const wrong = await rejection(
        appendOnce(storage(), "copied", numberedMessages(4, 1), { expectedSeq: 3, firstSeq: 4 }),
      );
      expect(wrong.actualLength).toBe(4);
      const ack = await appendOnce(storage(), "copied", numberedMessages(4, 2), {
        expectedSeq: 4,
        firstSeq: 4,
        labels: { user: "alice" },
      });
      expect(ack).toMatchObject({ firstSeq: 4, nextSeq: 6 });
      expect(await storage().meta("copied")).toMatchObject({
        firstSeq: 4,
        messageCount: 6,
        labels: { user: "alice" },
      });
      expect(await readMessages(storage(), "copied")).toStrictEqual(numberedMessages(4, 2));
      const again = await appendOnce(storage(), "copied", numberedMessages(4, 2), {
        expectedSeq: 4,
        firstSeq: 4,
      });
      expect(again).toMatchObject({ firstSeq: 4, nextSeq: 6 });
      expect((await storage().meta("copied"))?.messageCount).toBe(6);
    });

    it("keeps the first kept seq across a reopen", async (test) => {
      await appendOnce(storage(), "t", numberedMessages(0, 5), { sync: true });
      await storage().trim("t", 3);
      const reopened = await context.reopen();
      if (!reopened) return test.skip();
      expect(await reopened.meta("t")).toMatchObject({ firstSeq: 3, messageCount: 5 });
      expect(await readMessages(reopened, "t")).toStrictEqual(numberedMessages(3, 2));
      expect((await appendOnce(reopened, "t", ['{"n":5}'], { expectedSeq: 5 })).firstSeq).toBe(5);
    });
  });

  describe("retention", () => {
    it("finds the first message appended since a time, never counting a younger one older", async () => {
      await appendOnce(storage(), "aged", numberedMessages(0, 3), { sync: true });
      await tick();
      const since = Date.now();
      await tick();
      await appendOnce(storage(), "aged", numberedMessages(3, 2), { sync: true });
      expect(await storage().firstSeqSince("aged", since)).toBe(3);
      expect(await storage().firstSeqSince("aged", 0)).toBe(0);
      expect(await storage().firstSeqSince("aged", Date.now() + 60_000)).toBe(5);
      await storage().trim("aged", 4);
      expect(await storage().firstSeqSince("aged", 0)).toBe(4);
      expect((await rejection(storage().firstSeqSince("nobody", 0))).code).toBe(Code.NotFound);
    });

    it("deletes an idle session only if it was not updated since the guard's time", async () => {
      await appendOnce(storage(), "idle", ['{"a":1}']);
      await tick();
      const cutoff = Date.now();
      await tick();
      await appendOnce(storage(), "busy", ['{"a":1}']);
      expect(await storage().delete("busy", { updatedBeforeMs: cutoff })).toBe(false);
      expect(await storage().meta("busy")).toBeDefined();
      expect(await storage().delete("idle", { updatedBeforeMs: cutoff })).toBe(true);
      expect(await storage().meta("idle")).toBeUndefined();
      expect(await storage().delete("idle", { updatedBeforeMs: cutoff })).toBe(false);
    });
  });

  it("keeps forks and labels within their tenant", async () => {
    const other = storage().tenant("other-tenant");
    await appendOnce(storage(), "mine", ['{"a":1}'], { labels: { user: "alice" } });
    expect((await rejection(other.fork("mine", 1, "theirs", {}))).code).toBe(Code.NotFound);
    expect((await rejection(other.setLabels("mine", { user: "eve" }))).code).toBe(Code.NotFound);
    await storage().fork("mine", 1, "copy", {});
    expect(await other.meta("copy")).toBeUndefined();
    expect(await other.list({ ...byId(), selector: parseSelector("user=alice") })).toStrictEqual(
      [],
    );
  });
}

function byId() {
  return { prefix: "", selector: [], order: "id" as const, after: undefined, limit: 100 };
}
