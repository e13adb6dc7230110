import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SessionStorage, WriteOptions } from "../../src/store/storage.js";

/** A backend under test: `storage` is not yet opened; `cleanup` removes what `create` made. */
export interface StorageFixture {
  storage: SessionStorage;
  cleanup(): Promise<void>;
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

/** Every page `read` yields, checking that none is empty. */
export async function readPages(
  storage: SessionStorage,
  sessionId: string,
  fromSeq: number,
  count: number,
): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of storage.read(sessionId, fromSeq, count)) {
    expect(page.length, `an empty page reading ${sessionId} from ${fromSeq}`).toBeGreaterThan(0);
    pages.push(page);
  }
  return pages;
}

/** The messages `read` yields, its pages joined in order. */
export async function readMessages(
  storage: SessionStorage,
  sessionId: string,
  fromSeq: number,
  count: number,
): Promise<string[]> {
  return (await readPages(storage, sessionId, fromSeq, count)).flat();
}

const CREATED_AT_MS = 1_731_000_000_123;

function writeOptions(overrides: Partial<WriteOptions> = {}): WriteOptions {
  return { sync: false, createdAtMs: CREATED_AT_MS, ...overrides };
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
    let storage: SessionStorage;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      const fixture = await create();
      storage = fixture.storage;
      cleanup = () => fixture.cleanup();
      await storage.open();
    });

    afterEach(async () => {
      await storage.close();
      await cleanup();
    });

    /** Writes `messages` at the session's current count. */
    async function append(
      sessionId: string,
      messages: readonly string[],
      options: Partial<WriteOptions> = {},
    ) {
      const firstSeq = (await storage.meta(sessionId))?.messageCount ?? 0;
      await storage.write(sessionId, firstSeq, messages, writeOptions(options));
    }

    it("has no metadata for an unknown session", async () => {
      expect(await storage.meta("never-written")).toBeUndefined();
    });

    it("creates a session on its first write, keeping createdAtMs and every message byte for byte", async () => {
      await storage.write(
        "agent-1",
        0,
        TRICKY_MESSAGES,
        writeOptions({ createdAtMs: 1_700_000_000_001 }),
      );

      const meta = await storage.meta("agent-1");
      expect(meta).toMatchObject({
        sessionId: "agent-1",
        createdAtMs: 1_700_000_000_001,
        messageCount: TRICKY_MESSAGES.length,
      });
      expect(typeof meta?.agentLoopVersion).toBe("string");
      expect(meta?.agentLoopVersion).not.toBe("");
      expect(await readMessages(storage, "agent-1", 0, TRICKY_MESSAGES.length)).toStrictEqual(
        TRICKY_MESSAGES,
      );
    });

    it("creates nothing when the first write of an unknown session has no messages", async () => {
      await storage.write("empty-write", 0, [], writeOptions());
      await storage.write("empty-sync", 0, [], writeOptions({ sync: true }));

      expect(await storage.meta("empty-write")).toBeUndefined();
      expect(await storage.meta("empty-sync")).toBeUndefined();
      expect(await storage.list({ prefix: "", after: "", limit: 10 })).toStrictEqual([]);
    });

    it("appends successive writes in order", async () => {
      await storage.write("ordered", 0, numberedMessages(0, 3), writeOptions());
      await storage.write("ordered", 3, numberedMessages(3, 2), writeOptions({ sync: true }));
      await storage.write("ordered", 5, [], writeOptions());
      await storage.write("ordered", 5, numberedMessages(5, 1), writeOptions());

      expect(await readMessages(storage, "ordered", 0, 6)).toStrictEqual(numberedMessages(0, 6));
    });

    it("reads exactly the requested range, as pages that join in order", async () => {
      const all = numberedMessages(0, 10);
      await storage.write("ranges", 0, all.slice(0, 4), writeOptions());
      await storage.write("ranges", 4, all.slice(4), writeOptions());

      const ranges: [from: number, count: number][] = [
        [0, 10],
        [0, 1],
        [0, 4],
        [3, 4],
        [5, 2],
        [7, 3],
        [9, 1],
      ];
      for (const [from, count] of ranges) {
        expect(
          await readMessages(storage, "ranges", from, count),
          `from ${from}, count ${count}`,
        ).toStrictEqual(all.slice(from, from + count));
      }
      for (const from of [0, 5, 10]) {
        expect(await readPages(storage, "ranges", from, 0), `from ${from}, count 0`).toStrictEqual(
          [],
        );
      }
    });

    it("lists sessions sorted by id, filtered by prefix, after an exclusive bound, limited", async () => {
      const ids = ["b-2", "a-1", "b-10", "c", "b-1", "ab", "b"];
      for (const [index, id] of ids.entries()) {
        await storage.write(id, 0, numberedMessages(0, index + 1, id), writeOptions());
      }
      const list = async (prefix: string, after: string, limit: number) =>
        (await storage.list({ prefix, after, limit })).map((meta) => meta.sessionId);

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

      const metas = await storage.list({ prefix: "b-1", after: "", limit: 100 });
      expect(metas).toMatchObject([
        { sessionId: "b-1", messageCount: 5, createdAtMs: CREATED_AT_MS },
        { sessionId: "b-10", messageCount: 3, createdAtMs: CREATED_AT_MS },
      ]);
    });

    it("deletes a session (true, then false) after which it starts again at seq 0", async () => {
      await storage.write(
        "doomed",
        0,
        numberedMessages(0, 3, "old"),
        writeOptions({ createdAtMs: 1000 }),
      );
      await storage.write("survivor", 0, numberedMessages(0, 1), writeOptions());

      expect(await storage.delete("doomed")).toBe(true);
      expect(await storage.meta("doomed")).toBeUndefined();
      expect(
        (await storage.list({ prefix: "", after: "", limit: 10 })).map((meta) => meta.sessionId),
      ).toStrictEqual(["survivor"]);
      expect(await storage.delete("doomed")).toBe(false);
      expect(await storage.delete("never-written")).toBe(false);

      await storage.write(
        "doomed",
        0,
        numberedMessages(0, 2, "new"),
        writeOptions({ createdAtMs: 2000 }),
      );
      expect(await storage.meta("doomed")).toMatchObject({ messageCount: 2, createdAtMs: 2000 });
      expect(await readMessages(storage, "doomed", 0, 2)).toStrictEqual(
        numberedMessages(0, 2, "new"),
      );
      expect(await readMessages(storage, "survivor", 0, 1)).toStrictEqual(numberedMessages(0, 1));
    });

    it("counts messages in the metadata right after each write", async () => {
      await append("counted", numberedMessages(0, 1));
      expect((await storage.meta("counted"))?.messageCount).toBe(1);
      await append("counted", numberedMessages(1, 4), { sync: true });
      expect((await storage.meta("counted"))?.messageCount).toBe(5);
      await append("counted", []);
      expect((await storage.meta("counted"))?.messageCount).toBe(5);
      await append("counted", numberedMessages(5, 2));
      expect((await storage.meta("counted"))?.messageCount).toBe(7);
    });

    it("reports every message durable after a write with sync", async () => {
      await append("durable", numberedMessages(0, 2));
      await append("durable", numberedMessages(2, 1), { sync: true });
      expect(await storage.meta("durable")).toMatchObject({ messageCount: 3, durableCount: 3 });

      // A sync write with no messages makes what earlier writes stored durable.
      await append("durable", numberedMessages(3, 2));
      await append("durable", [], { sync: true });
      expect(await storage.meta("durable")).toMatchObject({ messageCount: 5, durableCount: 5 });

      await append("durable-first", numberedMessages(0, 1), { sync: true });
      expect(await storage.meta("durable-first")).toMatchObject({
        messageCount: 1,
        durableCount: 1,
      });
    });
  });
}
