import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import { AppendChain } from "../../src/store/append-chain.js";
import {
  type AppendAck,
  type AppendOptions,
  listByIdQuery,
  type ReadRange,
  type SessionChange,
  type SessionStorage,
} from "../../src/store/storage.js";
import { bytesOf, textsOf } from "../helpers/message-bytes.js";
import type { RootTenantStorage } from "../helpers/root-tenant.js";
import { describeLineageConformance } from "./conformance-lineage.js";

/**
 * A backend under test: `storage` is not yet opened; `cleanup` removes what `create` made. The
 * optional parts are for backends that can be made to fail for real (a full file system, a
 * database that refuses writes) or whose stored records can be damaged behind their back; the
 * tests that need them are skipped elsewhere.
 */
export interface StorageFixture {
  storage: RootTenantStorage;
  cleanup(): Promise<void>;
  /** Reopens the same stored data with a new backend instance, as after a restart. */
  reopen?(): Promise<RootTenantStorage>;
  /** Nothing it keeps survives a restart, so it never counts a message durable. */
  volatile?: boolean;
  writeFaults?: WriteFaults;
  /** Changes stored record `seq` of a session so that it is no longer what was appended. */
  damage?(sessionId: string, seq: number): Promise<void>;
  /** Whether a read that found damage marks the session corrupt (appends and Flush refused). */
  damageMarksCorrupt?: boolean;
}

export interface WriteFaults {
  /** From now on, writes that need room fail (as a full disk or a failing database does). */
  failWrites(): Promise<void>;
  /** Writes work again. */
  restoreWrites(): Promise<void>;
}

/**
 * Messages that a careless backend would change: a 20-digit integer (past 2^53), `\u00e9` and `\/`
 * escapes that JSON.stringify would rewrite, raw non-ASCII, an emoji and `1.50`.
 */
export const TRICKY_MESSAGES: readonly string[] = [
  String.raw`{"role":"User","content":"caf\u00e9 \/ slash","trace":12345678901234567890}`,
  `{"role":"Assistant","content":"naïve café ☕ and 😀","score":1.50}`,
  String.raw`{ "role" : "Tool", "content" : "tab\tquote\"", "ids" : [ 99999999999999999999 ] }`,
];

/** `{"n":seq,...}` messages whose text says their seq, for checking order and ranges. */
export function numberedMessages(from: number, count: number, tag = "m"): string[] {
  return Array.from({ length: count }, (_, i) => `{"n":${from + i},"tag":"${tag}"}`);
}

/** Appends one request and waits for its acknowledgement. */
export async function appendOnce(
  storage: SessionStorage,
  sessionId: string,
  messages: readonly string[],
  options: Partial<AppendOptions> = {},
): Promise<AppendAck> {
  const { ack } = await storage.append(sessionId, bytesOf(messages), { sync: false, ...options });
  return ack;
}

/** Every page `read` yields, checking that none is empty and that they join without gaps. */
export async function readPages(
  storage: SessionStorage,
  sessionId: string,
  range: Partial<ReadRange> = {},
): Promise<string[][]> {
  const pages: string[][] = [];
  let expected: number | undefined;
  for await (const page of storage.read(sessionId, {
    fromSeq: 0,
    limit: 0,
    last: false,
    ...range,
  })) {
    expect(page.messages.length, `an empty page reading ${sessionId}`).toBeGreaterThan(0);
    if (expected !== undefined) expect(page.firstSeq).toBe(expected);
    expected = page.firstSeq + page.messages.length;
    pages.push(textsOf(page.messages));
  }
  return pages;
}

/** The messages `read` yields, its pages joined in order. */
export async function readMessages(
  storage: SessionStorage,
  sessionId: string,
  range: Partial<ReadRange> = {},
): Promise<string[]> {
  return (await readPages(storage, sessionId, range)).flat();
}

/** The error a promise rejects with (failing the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<SessionStoreError> {
  const error = await promise.then(
    (value) => expect.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  return error as SessionStoreError;
}

/**
 * Declares the behaviour every SessionStorage backend must have (see src/store/storage.ts).
 * Each test gets a fresh backend from `create`; the suite opens it, closes it after the test and
 * then calls `cleanup`.
 */
export function describeStorageConformance(
  name: string,
  create: () => Promise<StorageFixture>,
): void {
  describe(`${name} storage conformance`, () => {
    let fixture: StorageFixture;
    let storage: RootTenantStorage;
    /** Backends opened by a test (reopens), closed after it. */
    let opened: RootTenantStorage[];

    /** The durable count a backend reports where `count` messages are durable. */
    const durable = (count: number) => (fixture.volatile ? 0 : count);

    beforeEach(async () => {
      fixture = await create();
      storage = fixture.storage;
      opened = [storage];
      await storage.open();
    });

    afterEach(async () => {
      await fixture.writeFaults?.restoreWrites();
      for (const backend of opened.reverse()) await backend.close().catch(() => undefined);
      await fixture.cleanup();
    });

    it("has no metadata, messages or list entry for an unknown session", async () => {
      expect(await storage.meta("never-written")).toBeUndefined();
      expect(await readMessages(storage, "never-written")).toEqual([]);
      expect(await storage.list(listByIdQuery("", "", 10))).toEqual([]);
      expect(await storage.flush("never-written")).toEqual({ flushed: 0, failures: [] });
    });

    it("creates a session on its first append, keeping every message byte for byte", async () => {
      const before = Date.now();
      const ack = await appendOnce(storage, "agent-1", TRICKY_MESSAGES);
      expect(ack).toMatchObject({ sessionId: "agent-1", firstSeq: 0, nextSeq: 3 });

      const meta = await storage.meta("agent-1");
      expect(meta).toMatchObject({ sessionId: "agent-1", messageCount: 3 });
      expect(meta?.createdAtMs).toBeGreaterThanOrEqual(before - 1000);
      expect(meta?.agentLoopVersion).not.toBe("");
      expect(await readMessages(storage, "agent-1")).toStrictEqual(TRICKY_MESSAGES);
    });

    it("records the creation time a creating request gives (as a copy does), and only then", async () => {
      await appendOnce(storage, "copied", numberedMessages(0, 1), {
        createdAtMs: 1_700_000_000_123,
      });
      await appendOnce(storage, "copied", numberedMessages(1, 1), { createdAtMs: 42 });
      expect(await storage.meta("copied")).toMatchObject({
        createdAtMs: 1_700_000_000_123,
        messageCount: 2,
      });
    });

    it("answers an empty request with the length, creating nothing, checking expected_seq", async () => {
      expect(await appendOnce(storage, "probe", [])).toMatchObject({ firstSeq: 0, nextSeq: 0 });
      expect(await appendOnce(storage, "probe", [], { sync: true, expectedSeq: 0 })).toMatchObject({
        nextSeq: 0,
      });
      expect(await storage.meta("probe")).toBeUndefined();
      const mismatch = await rejection(appendOnce(storage, "probe", [], { expectedSeq: 2 }));
      expect(mismatch.code).toBe(Code.Aborted);
      expect(mismatch.actualLength).toBe(0);

      await appendOnce(storage, "probe", numberedMessages(0, 2));
      expect(await appendOnce(storage, "probe", [], { expectedSeq: 2 })).toMatchObject({
        firstSeq: 2,
        nextSeq: 2,
      });
      expect((await rejection(appendOnce(storage, "probe", [], { expectedSeq: 1 }))).code).toBe(
        Code.Aborted,
      );
    });

    it("gives successive appends contiguous seqs, and reads exactly the ranges asked for", async () => {
      const all = numberedMessages(0, 10);
      const acks = [
        await appendOnce(storage, "ranges", all.slice(0, 4)),
        await appendOnce(storage, "ranges", all.slice(4, 5), { sync: true }),
        await appendOnce(storage, "ranges", all.slice(5)),
      ];
      expect(acks.map((ack) => [ack.firstSeq, ack.nextSeq])).toEqual([
        [0, 4],
        [4, 5],
        [5, 10],
      ]);
      const ranges: [fromSeq: number, limit: number, last: boolean, want: string[]][] = [
        [0, 0, false, all],
        [3, 0, false, all.slice(3)],
        [3, 4, false, all.slice(3, 7)],
        [9, 5, false, all.slice(9)],
        [10, 0, false, []],
        [12, 0, false, []],
        [0, 3, true, all.slice(7)],
        [8, 5, true, all.slice(8)],
        [0, 20, true, all],
      ];
      for (const [fromSeq, limit, last, want] of ranges) {
        expect(
          await readMessages(storage, "ranges", { fromSeq, limit, last }),
          `from ${fromSeq}, limit ${limit}, last ${last}`,
        ).toStrictEqual(want);
      }
    });

    it("lists sessions sorted by id, filtered by prefix, after an exclusive bound, limited", async () => {
      const ids = ["b-2", "a-1", "b-10", "c", "b-1", "ab", "b"];
      for (const [index, id] of ids.entries()) {
        await appendOnce(storage, id, numberedMessages(0, index + 1, id));
      }
      const list = async (prefix: string, after: string, limit: number) =>
        (await storage.list(listByIdQuery(prefix, after, limit))).map((meta) => meta.sessionId);

      expect(await list("", "", 100)).toStrictEqual(["a-1", "ab", "b", "b-1", "b-10", "b-2", "c"]);
      expect(await list("b-", "", 100)).toStrictEqual(["b-1", "b-10", "b-2"]);
      expect(await list("b-", "b-1", 100)).toStrictEqual(["b-10", "b-2"]);
      expect(await list("b", "b", 100)).toStrictEqual(["b-1", "b-10", "b-2"]);
      expect(await list("b", "a-1", 2)).toStrictEqual(["b", "b-1"]);
      expect(await list("", "a-1", 2)).toStrictEqual(["ab", "b"]);
      expect(await list("", "b-2", 100)).toStrictEqual(["c"]);
      expect(await list("", "c", 100)).toStrictEqual([]);
      expect(await list("a", "b", 100)).toStrictEqual([]);
      expect(await list("zz", "", 100)).toStrictEqual([]);
      expect(await list("", "", 1)).toStrictEqual(["a-1"]);
      expect(await storage.list(listByIdQuery("b-1", "", 100))).toMatchObject([
        { sessionId: "b-1", messageCount: 5 },
        { sessionId: "b-10", messageCount: 3 },
      ]);
    });

    it("deletes a session (true, then false) after which it starts again at seq 0", async () => {
      await appendOnce(storage, "doomed", numberedMessages(0, 3, "old"));
      await appendOnce(storage, "survivor", numberedMessages(0, 1));
      const changes: SessionChange["kind"][] = [];
      const unsubscribe = storage.subscribe("doomed", (change) => changes.push(change.kind));

      expect(await storage.delete("doomed")).toBe(true);
      await waitUntil(() => changes.includes("deleted"));
      expect(await storage.meta("doomed")).toBeUndefined();
      expect(await readMessages(storage, "doomed")).toEqual([]);
      expect((await storage.list(listByIdQuery("", "", 10))).map((m) => m.sessionId)).toEqual([
        "survivor",
      ]);
      expect(await storage.delete("doomed")).toBe(false);
      expect(await storage.delete("never-written")).toBe(false);

      const ack = await appendOnce(storage, "doomed", numberedMessages(0, 2, "new"));
      expect(ack).toMatchObject({ firstSeq: 0, nextSeq: 2 });
      expect(await readMessages(storage, "doomed")).toStrictEqual(numberedMessages(0, 2, "new"));
      expect(await readMessages(storage, "survivor")).toStrictEqual(numberedMessages(0, 1));
      unsubscribe();
    });

    it("reports buffered messages in the metadata at once, and all durable after sync", async () => {
      await appendOnce(storage, "counted", numberedMessages(0, 1));
      expect((await storage.meta("counted"))?.messageCount).toBe(1);
      const ack = await appendOnce(storage, "counted", numberedMessages(1, 4), { sync: true });
      expect(ack.durableCount).toBe(durable(5));
      expect(await storage.meta("counted")).toMatchObject({
        messageCount: 5,
        durableCount: durable(5),
      });
      await appendOnce(storage, "counted", numberedMessages(5, 2));
      const meta = await storage.meta("counted");
      expect(meta?.messageCount).toBe(7);
      expect(meta?.durableCount).toBeGreaterThanOrEqual(durable(5));
      expect(meta?.durableCount).toBeLessThanOrEqual(7);
      // An empty sync request makes what came before it durable, as Flush does.
      expect((await appendOnce(storage, "counted", [], { sync: true })).durableCount).toBe(
        durable(7),
      );
    });

    it("flushes one session or all, counting what it wrote", async () => {
      await appendOnce(storage, "f1", numberedMessages(0, 2));
      await appendOnce(storage, "f2", numberedMessages(0, 3));
      const one = await storage.flush("f1");
      expect(one.failures).toEqual([]);
      expect((await storage.meta("f1"))?.durableCount).toBe(durable(2));
      const all = await storage.flush();
      expect(all.failures).toEqual([]);
      expect(one.flushed + all.flushed).toBeLessThanOrEqual(5);
      expect((await storage.meta("f2"))?.durableCount).toBe(durable(3));
    });

    it("keeps tenants apart: the same id in two tenants is two sessions, seen only by its own", async () => {
      const acme = storage.tenant("acme");
      const globex = storage.tenant("globex");
      const heard: string[] = [];
      const stops = [
        acme.subscribe("same", () => heard.push("acme")),
        globex.subscribe("same", () => heard.push("globex")),
        storage.subscribe("same", () => heard.push("none")),
      ];
      await appendOnce(acme, "same", ['{"t":"acme"}'], { sync: true });
      await appendOnce(acme, "acme-only", ['{"t":"acme"}']);
      await appendOnce(globex, "same", ['{"t":"globex"}', '{"t":"globex"}']);
      await waitUntil(() => heard.includes("acme") && heard.includes("globex"));

      expect(await readMessages(acme, "same")).toStrictEqual(['{"t":"acme"}']);
      expect(await readMessages(globex, "same")).toStrictEqual([
        '{"t":"globex"}',
        '{"t":"globex"}',
      ]);
      expect(await storage.meta("same")).toBeUndefined();
      expect(await globex.meta("acme-only")).toBeUndefined();
      const ids = async (sessions: SessionStorage) =>
        (await sessions.list(listByIdQuery("", "", 10))).map((meta) => meta.sessionId);
      expect(await ids(acme)).toStrictEqual(["acme-only", "same"]);
      expect(await ids(globex)).toStrictEqual(["same"]);
      expect(await ids(storage)).toStrictEqual([]);
      // expected_seq counts the caller's own session only.
      const mismatch = await rejection(appendOnce(globex, "same", ["{}"], { expectedSeq: 1 }));
      expect(mismatch.actualLength).toBe(2);

      expect((await globex.flush()).failures).toStrictEqual([]);
      expect(await globex.delete("same")).toBe(true);
      expect(await globex.delete("acme-only")).toBe(false);
      expect(await readMessages(acme, "same")).toStrictEqual(['{"t":"acme"}']);
      expect((await acme.meta("acme-only"))?.messageCount).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(heard).not.toContain("none");
      for (const stop of stops) stop();
      expect(await storage.tenants()).toEqual(expect.arrayContaining(["", "acme"]));
    });

    describe("expected_seq", () => {
      it("appends only at the given seq, telling the actual length otherwise", async () => {
        await appendOnce(storage, "cas", numberedMessages(0, 2), { expectedSeq: 0 });
        const error = await rejection(
          appendOnce(storage, "cas", numberedMessages(0, 1, "late"), { expectedSeq: 5 }),
        );
        expect(error.code).toBe(Code.Aborted);
        expect(error.actualLength).toBe(2);
        expect(error.message).toMatch(/has 2 messages/);
        await appendOnce(storage, "cas", numberedMessages(2, 1), { expectedSeq: 2 });
        expect(await readMessages(storage, "cas")).toStrictEqual(numberedMessages(0, 3));
        // A session that does not exist has length 0: nothing is created by a mismatch.
        expect(
          (await rejection(appendOnce(storage, "none", ["{}"], { expectedSeq: 1 }))).code,
        ).toBe(Code.Aborted);
        expect(await storage.meta("none")).toBeUndefined();
      });

      it("acknowledges a resend with its original seqs, storing only what is missing", async () => {
        const first = numberedMessages(0, 3, "r");
        expect(await appendOnce(storage, "resend", first, { expectedSeq: 0 })).toMatchObject({
          firstSeq: 0,
          nextSeq: 3,
        });
        await appendOnce(storage, "resend", numberedMessages(3, 2, "o"), { expectedSeq: 3 });
        const again = await appendOnce(storage, "resend", first, { expectedSeq: 0, sync: true });
        expect(again).toMatchObject({ firstSeq: 0, nextSeq: 3 });
        expect(again.durableCount).toBeGreaterThanOrEqual(durable(3));

        // A resend whose start is stored: the rest is appended.
        const longer = [...numberedMessages(3, 2, "o"), ...numberedMessages(5, 2, "o")];
        expect(await appendOnce(storage, "resend", longer, { expectedSeq: 3 })).toMatchObject({
          firstSeq: 3,
          nextSeq: 7,
        });
        expect(await readMessages(storage, "resend")).toStrictEqual([
          ...first,
          ...numberedMessages(3, 4, "o"),
        ]);
      });

      it("refuses a resend whose messages differ from the stored ones, storing nothing", async () => {
        await appendOnce(storage, "differs", numberedMessages(0, 3));
        const error = await rejection(
          appendOnce(storage, "differs", [...numberedMessages(0, 2), '{"changed":1}', '{"x":1}'], {
            expectedSeq: 0,
          }),
        );
        expect(error.code).toBe(Code.Aborted);
        expect(error.actualLength).toBe(3);
        expect(await readMessages(storage, "differs")).toStrictEqual(numberedMessages(0, 3));
      });

      it("lets exactly one of writers racing on the same expected_seq win each position", async () => {
        let length = 0;
        for (let round = 0; round < 20; round++) {
          const outcomes = await Promise.allSettled(
            ["a", "b", "c"].map((writer) =>
              appendOnce(storage, "race", numberedMessages(length, 1 + (round % 3), writer), {
                expectedSeq: length,
                sync: round % 2 === 0,
              }),
            ),
          );
          const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
          expect(won).toHaveLength(1);
          for (const outcome of outcomes) {
            if (outcome.status === "rejected") {
              expect((outcome.reason as SessionStoreError).code).toBe(Code.Aborted);
            }
          }
          length = (won[0] as PromiseFulfilledResult<AppendAck>).value.nextSeq;
        }
        expect(await readMessages(storage, "race")).toHaveLength(length);
      });
    });

    it("orders concurrent requests to a session into one log with contiguous seqs", async () => {
      const writers = ["w0", "w1", "w2", "w3"];
      const acks = await Promise.all(
        writers.flatMap((writer) =>
          Array.from({ length: 25 }, (_, i) =>
            appendOnce(storage, "shared", numberedMessages(i * 2, 2, writer), {
              sync: i % 5 === 0,
            }),
          ),
        ),
      );
      const sorted = [...acks].sort((a, b) => a.firstSeq - b.firstSeq);
      sorted.forEach((ack, index) => {
        expect(ack.firstSeq).toBe(index * 2);
        expect(ack.nextSeq).toBe(index * 2 + 2);
      });
      const stored = await readMessages(storage, "shared");
      expect(stored).toHaveLength(200);
      for (const writer of writers) {
        const own = stored.filter((message) => message.includes(`"${writer}"`));
        expect(own).toStrictEqual(
          Array.from({ length: 25 }, (_, i) => numberedMessages(i * 2, 2, writer)).flat(),
        );
      }
    });

    it("lets reads run while appends do, each seeing a whole prefix of the log", async () => {
      const writes = (async () => {
        for (let i = 0; i < 60; i++) {
          await appendOnce(storage, "busy", numberedMessages(i * 5, 5), { sync: i % 10 === 0 });
        }
      })();
      const seen: number[] = [];
      while (seen.at(-1) !== 300) {
        const messages = await readMessages(storage, "busy");
        expect(messages).toStrictEqual(numberedMessages(0, messages.length));
        const meta = await storage.meta("busy");
        expect(meta?.messageCount ?? 0).toBeGreaterThanOrEqual(messages.length);
        seen.push(messages.length);
        if (seen.length > 10_000) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writes;
      expect(seen.at(-1)).toBe(300);
    });

    it("notifies subscribers of new messages, also of sessions that do not exist yet, until unsubscribed", async () => {
      const changes: SessionChange["kind"][] = [];
      const unsubscribe = storage.subscribe("later", (change) => changes.push(change.kind));
      await appendOnce(storage, "other", numberedMessages(0, 1));
      expect(changes).toEqual([]);
      await appendOnce(storage, "later", numberedMessages(0, 2));
      await waitUntil(() => changes.includes("appended"));
      const seenBefore = changes.length;
      // What a notification announces is readable when it arrives.
      const readable = new Promise<string[]>((resolve) => {
        const stop = storage.subscribe("later", () => {
          stop();
          void readMessages(storage, "later").then(resolve);
        });
      });
      await appendOnce(storage, "later", numberedMessages(2, 1), { sync: true });
      expect(await readable).toStrictEqual(numberedMessages(0, 3));
      unsubscribe();
      await appendOnce(storage, "later", numberedMessages(3, 1));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(changes.length).toBeGreaterThan(seenBefore);
      const afterUnsubscribe = changes.length;
      await appendOnce(storage, "later", numberedMessages(4, 1));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(changes.length).toBe(afterUnsubscribe);
    });

    it("refuses the requests of a chain after one of them failed for its expected_seq", async () => {
      const chain = new AppendChain();
      await appendOnce(storage, "chained", numberedMessages(0, 1), { chain });
      const refused = await rejection(
        Promise.resolve()
          .then(() =>
            storage.append("chained", bytesOf(numberedMessages(0, 1, "stale")), {
              chain,
              expectedSeq: 7,
              sync: false,
            }),
          )
          .then((appended) => appended.ack),
      );
      expect(refused.code).toBe(Code.Aborted);
      // Whether the backend decided it at once or in a transaction, nothing after it on its
      // stream is stored: the server ends the stream there, and a backend that took later
      // requests first fails them with it.
      const later = await Promise.allSettled([
        Promise.resolve()
          .then(() =>
            storage.append("chained", bytesOf(numberedMessages(1, 1, "late")), {
              chain,
              sync: false,
            }),
          )
          .then((a) => a.ack),
      ]);
      if (chain.failure) expect(later[0]?.status).toBe("rejected");
      const stored = await readMessages(storage, "chained");
      expect(stored.slice(0, 1)).toStrictEqual(numberedMessages(0, 1));
      expect(stored.some((message) => message.includes("stale"))).toBe(false);
      if (later[0]?.status === "rejected") expect(stored).toHaveLength(1);
    });

    it("keeps what it acknowledged durably across a reopen", async (context) => {
      if (!fixture.reopen) return context.skip();
      await appendOnce(storage, "kept", TRICKY_MESSAGES, { sync: true });
      await appendOnce(storage, "kept", numberedMessages(3, 2));
      await storage.flush();
      await storage.close();
      opened = [];
      storage = await fixture.reopen();
      opened.push(storage);
      await storage.open();
      expect(await storage.meta("kept")).toMatchObject({ messageCount: 5, durableCount: 5 });
      expect(await readMessages(storage, "kept")).toStrictEqual([
        ...TRICKY_MESSAGES,
        ...numberedMessages(3, 2),
      ]);
    });

    describeLineageConformance({
      storage: () => storage,
      fixture: () => fixture,
      reopen: async () => {
        if (!fixture.reopen) return undefined;
        await storage.flush();
        await storage.close();
        opened = [];
        storage = await fixture.reopen();
        opened.push(storage);
        await storage.open();
        return storage;
      },
    });

    describe("failures", () => {
      it("stores nothing of a durable request whose write fails, and says so; works again after", async (context) => {
        const faults = fixture.writeFaults;
        if (!faults) return context.skip();
        await appendOnce(storage, "failing", numberedMessages(0, 2), { sync: true });
        await faults.failWrites();
        const chain = new AppendChain();
        const big = `{"big":"${"x".repeat(64 << 10)}"}`;
        const failed = await rejection(
          appendOnce(storage, "failing", [big], { sync: true, chain }),
        );
        expect([Code.ResourceExhausted, Code.Unavailable]).toContain(failed.code);
        expect(failed.message).toMatch(/nothing of this request was stored/);
        expect(chain.failure).toBeDefined();
        expect(() => chain.checkOpen()).toThrow(SessionStoreError);
        expect(await readMessages(storage, "failing")).toStrictEqual(numberedMessages(0, 2));
        expect((await storage.meta("failing"))?.messageCount).toBe(2);

        await faults.restoreWrites();
        const ack = await appendOnce(storage, "failing", numberedMessages(2, 1), { sync: true });
        expect(ack).toMatchObject({ firstSeq: 2, nextSeq: 3, durableCount: 3 });
        expect(await readMessages(storage, "failing")).toStrictEqual(numberedMessages(0, 3));
      });

      it("fails the later requests of a failed request's chain, in any session, storing none of them", async (context) => {
        const faults = fixture.writeFaults;
        if (!faults) return context.skip();
        await appendOnce(storage, "first", numberedMessages(0, 1), { sync: true });
        await appendOnce(storage, "second", numberedMessages(0, 1), { sync: true });
        await faults.failWrites();
        const chain = new AppendChain();
        const big = `{"big":"${"x".repeat(64 << 10)}"}`;
        // Admitted in stream order before the first one's write fails.
        const acks = await Promise.all([
          storage.append("first", bytesOf([big]), { sync: true, chain }),
          storage.append("second", bytesOf(numberedMessages(1, 1)), { sync: false, chain }),
          storage.append("first", bytesOf(numberedMessages(2, 1)), { sync: false, chain }),
        ]);
        const outcomes = await Promise.allSettled(acks.map((appended) => appended.ack));
        expect(outcomes.map((outcome) => outcome.status)).toEqual([
          "rejected",
          "rejected",
          "rejected",
        ]);
        const reasons = outcomes.map((outcome) =>
          String((outcome as PromiseRejectedResult).reason),
        );
        // The one behind it in its session fails with it; the one in another session with its
        // chain (or with the transaction they shared).
        expect(reasons[2]).toMatch(/nothing of this request was stored/);
        expect(reasons[1]).toMatch(/nothing of this request was stored/);
        expect(() => chain.checkOpen()).toThrow(/earlier request on this stream failed/);
        await faults.restoreWrites();
        expect(await readMessages(storage, "first")).toStrictEqual(numberedMessages(0, 1));
        expect(await readMessages(storage, "second")).toStrictEqual(numberedMessages(0, 1));
        await storage.flush();
        expect(await storage.meta("second")).toMatchObject({ messageCount: 1, durableCount: 1 });
      });

      it("answers DATA_LOSS naming the seq of a damaged record, serving the records before it", async (context) => {
        const damage = fixture.damage;
        if (!damage) return context.skip();
        await appendOnce(storage, "damaged", numberedMessages(0, 5), { sync: true });
        await appendOnce(storage, "healthy", numberedMessages(0, 1), { sync: true });
        await storage.flush();
        await damage("damaged", 3);
        expect(await readMessages(storage, "damaged", { limit: 3 })).toStrictEqual(
          numberedMessages(0, 3),
        );
        const error = await rejection(readMessages(storage, "damaged"));
        expect(error.code).toBe(Code.DataLoss);
        expect(error.message).toMatch(/\bseq 3\b/);
        await appendOnce(storage, "healthy", numberedMessages(1, 1));
        expect(await readMessages(storage, "healthy")).toStrictEqual(numberedMessages(0, 2));
        if (!fixture.damageMarksCorrupt) return;
        // Once known, the damage refuses new appends to it; other sessions go on, and Flush of
        // all reports it.
        expect((await rejection(appendOnce(storage, "damaged", ["{}"]))).code).toBe(Code.DataLoss);
        const report = await storage.flush();
        expect(report.failures.map((failure) => [failure.sessionId, failure.error.code])).toEqual([
          ["damaged", Code.DataLoss],
        ]);
        expect((await storage.meta("healthy"))?.durableCount).toBe(2);
      });
    });
  });
}

async function waitUntil(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
