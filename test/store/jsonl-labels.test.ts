import { appendFile, copyFile, mkdir, readdir, readFile, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { Code } from "../../src/errors.js";
import { parseSelector } from "../../src/labels.js";
import type { ListOrder, SessionMeta } from "../../src/store/storage.js";
import { bytesOf } from "../helpers/message-bytes.js";
import { readLikeMotosan } from "../helpers/test-server.js";
import { appendOnce, numberedMessages, rejection } from "./conformance.js";
import { type JsonlStorage, useDataDirectory } from "./jsonl-support.js";

/** Lets the clock move on, so that successive updates get distinct times. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** One page (up to 100) of a listing. */
async function listIds(
  storage: JsonlStorage,
  selector: string,
  order: ListOrder = "updated-desc",
): Promise<string[]> {
  const page = await storage.list({
    prefix: "",
    selector: parseSelector(selector),
    order,
    after: undefined,
    limit: 100,
  });
  return page.map((meta) => meta.sessionId);
}

/** The labels and their revision, as LoadMeta reports them. */
async function labelsOf(storage: JsonlStorage, sessionId: string) {
  const meta = (await storage.meta(sessionId)) as SessionMeta;
  return { labels: meta.labels, revision: meta.labelsRevision };
}

/** Labels, listings by labels and update time, and guarded deletes, as the files hold them. */
describe("JsonlFileStorage labels and listings", () => {
  const data = useDataDirectory();
  const labelsDirectory = () => join(data.directory, ".sessionstore", "labels");
  const sidecar = (sessionId: string) => join(labelsDirectory(), `${sessionId}.json`);

  describe("labels", () => {
    it("live in a sidecar, leave the session file as motosan reads it, and survive a reopen", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 2), {
        sync: true,
        labels: { user: "alice" },
      });
      const before = await data.readText("s");
      await storage.setLabels("s", { team: "blue", user: "" });
      await storage.setLabels("s", { tier: "gold" }, 2);
      expect(await data.readText("s")).toBe(before);
      expect(readLikeMotosan(before)).toHaveLength(2);
      expect(JSON.parse(await readFile(sidecar("s"), "utf8"))).toStrictEqual({
        session_id: "s",
        created_at_ms: (await storage.meta("s"))?.createdAtMs,
        revision: 3,
        labels: { team: "blue", tier: "gold" },
      });

      const reopened = await data.reopen(storage);
      expect(await labelsOf(reopened, "s")).toStrictEqual({
        labels: { team: "blue", tier: "gold" },
        revision: 3,
      });
      expect(Object.keys((await reopened.meta("s"))?.labels ?? {})).toEqual(["team", "tier"]);
      await appendOnce(reopened, "s", numberedMessages(2, 1), { sync: true });
      expect(await labelsOf(reopened, "s")).toMatchObject({ revision: 3 });
    });

    it("are written before the creating request is acknowledged, and only by it", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 1), { labels: { user: "alice" } });
      expect(JSON.parse(await readFile(sidecar("s"), "utf8"))).toMatchObject({
        revision: 1,
        labels: { user: "alice" },
      });
      await appendOnce(storage, "s", numberedMessages(1, 1), { labels: { user: "bob" } });
      await appendOnce(storage, "unlabelled", numberedMessages(0, 1));
      expect(await readdir(labelsDirectory())).toEqual(["s.json"]);
    });

    it("of a racing pair with the same expected revision, exactly one is stored", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 1), { sync: true });
      const results = await Promise.allSettled(
        ["alice", "bob", "carol"].map((user) => storage.setLabels("s", { user }, 0)),
      );
      const won = results.filter((result) => result.status === "fulfilled");
      expect(won).toHaveLength(1);
      for (const result of results) {
        if (result.status === "rejected") expect(result.reason.code).toBe(Code.Aborted);
      }
      const winner = (won[0] as PromiseFulfilledResult<SessionMeta>).value.labels;
      const reopened = await data.reopen(storage);
      expect(await labelsOf(reopened, "s")).toStrictEqual({ labels: winner, revision: 1 });
    });

    it("go with the session when it is deleted; created again, it has none", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 1), { labels: { user: "alice" } });
      expect(await storage.delete("s")).toBe(true);
      expect(await readdir(labelsDirectory())).toEqual([]);
      await appendOnce(storage, "s", numberedMessages(0, 1));
      expect(await labelsOf(storage, "s")).toStrictEqual({ labels: {}, revision: 0 });
      expect((await rejection(storage.setLabels("gone", { user: "x" }))).code).toBe(Code.NotFound);
    });

    it("left behind by a crash are never applied to another session of that id, and are removed at the next start", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 1), { labels: { user: "alice" } });
      const kept = join(data.directory, "kept-sidecar.json");
      await copyFile(sidecar("s"), kept);
      await storage.delete("s");
      // As if the server died between deleting the file and its labels.
      await copyFile(kept, sidecar("s"));
      await tick();
      await appendOnce(storage, "s", numberedMessages(0, 1));
      expect(await labelsOf(storage, "s")).toStrictEqual({ labels: {}, revision: 0 });
      await storage.delete("s");

      // A file dropped in by hand finds the old labels there: they are not its own.
      await copyFile(kept, sidecar("s"));
      await data.copyFixture("agent-7f3a", undefined, "s");
      await vi.waitFor(async () => expect(await listIds(storage, "")).toContain("s"));
      expect(await listIds(storage, "user=alice")).toEqual([]);
      expect(await labelsOf(storage, "s")).toStrictEqual({ labels: {}, revision: 0 });

      // The same while the server is stopped: the first listing finds the labels in the sidecar
      // and must not believe them.
      await storage.close();
      await copyFile(kept, sidecar("s"));
      await copyFile(kept, sidecar("orphan"));
      const reopened = await data.openStorage();
      expect(await listIds(reopened, "user=alice")).toEqual([]);
      expect(await listIds(reopened, "!user")).toEqual(["s"]);
      expect(await readdir(labelsDirectory())).toEqual(["s.json"]);

      await unlink(data.file("s"));
      const again = await data.reopen(reopened);
      expect(await readdir(labelsDirectory())).toEqual([]);
      expect(await again.meta("s")).toBeUndefined();
    });
  });

  describe("listings from the directory", () => {
    it("list a file dropped in while the server runs, with no labels, newest first", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "own", numberedMessages(0, 1), { labels: { user: "alice" } });
      expect(await listIds(storage, "")).toEqual(["own"]);
      await tick();
      await data.copyFixture("agent-7f3a", undefined, "dropped");
      await vi.waitFor(async () => expect(await listIds(storage, "")).toEqual(["dropped", "own"]));
      expect(await listIds(storage, "!user")).toEqual(["dropped"]);
      expect(await listIds(storage, "user=alice")).toEqual(["own"]);
      expect(await labelsOf(storage, "dropped")).toStrictEqual({ labels: {}, revision: 0 });
    });

    it("move a session appended to by hand outside the server up the order", async () => {
      await data.copyFixture("agent-7f3a", undefined, "a");
      const storage = await data.openStorage();
      await tick();
      await appendOnce(storage, "b", numberedMessages(0, 1), { sync: true });
      await tick();
      await appendOnce(storage, "c", numberedMessages(0, 1), { sync: true });
      expect(await listIds(storage, "")).toEqual(["c", "b", "a"]);
      // Every session is in use now; someone else appends to two of them.
      await tick();
      await appendFile(data.file("a"), '{"theirs":1}\n');
      await vi.waitFor(async () => expect(await listIds(storage, "")).toEqual(["a", "c", "b"]));
      expect((await storage.meta("a"))?.messageCount).toBe(6);
      await tick();
      await appendFile(data.file("b"), '{"theirs":2}\n');
      await vi.waitFor(async () => expect(await listIds(storage, "")).toEqual(["b", "a", "c"]));
      expect((await storage.meta("b"))?.messageCount).toBe(2);
    });

    it("drop a session whose file vanishes, and follow appends, label changes and deletes", async () => {
      const storage = await data.openStorage();
      for (const id of ["a", "b", "c"]) {
        await appendOnce(storage, id, numberedMessages(0, 1), { labels: { user: "alice" } });
        await tick();
      }
      expect(await listIds(storage, "user=alice")).toEqual(["c", "b", "a"]);
      await appendOnce(storage, "a", numberedMessages(1, 1));
      expect(await listIds(storage, "user=alice")).toEqual(["a", "c", "b"]);
      await storage.setLabels("c", { user: "bob" });
      expect(await listIds(storage, "user=alice")).toEqual(["a", "b"]);
      expect(await listIds(storage, "user in (alice,bob)", "id")).toEqual(["a", "b", "c"]);
      await storage.delete("a");
      expect(await listIds(storage, "user=alice")).toEqual(["b"]);
      await unlink(data.file("b"));
      await vi.waitFor(async () => expect(await listIds(storage, "")).toEqual(["c"]));
    });

    it("are built from the files at the first listing after a start", async () => {
      const first = await data.openStorage();
      for (const [id, user] of [
        ["a", "alice"],
        ["b", "bob"],
        ["c", "alice"],
      ]) {
        await appendOnce(first, id as string, numberedMessages(0, 1), {
          sync: true,
          labels: { user: user as string },
        });
        await tick();
      }
      const storage = await data.reopen(first);
      expect(await listIds(storage, "user=alice")).toEqual(["c", "a"]);
      const metas = await storage.list({
        prefix: "",
        selector: [],
        order: "updated-desc",
        after: undefined,
        limit: 2,
      });
      expect(metas.map((meta) => [meta.sessionId, meta.labels])).toEqual([
        ["c", { user: "alice" }],
        ["b", { user: "bob" }],
      ]);
      const last = metas[1] as SessionMeta;
      const rest = await storage.list({
        prefix: "",
        selector: [],
        order: "updated-desc",
        after: { sessionId: last.sessionId, updatedAtMs: last.updatedAtMs },
        limit: 2,
      });
      expect(rest.map((meta) => meta.sessionId)).toEqual(["a"]);
    });

    it("leave out entries the server does not use", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "a", numberedMessages(0, 1));
      await symlink(data.file("a"), data.file("link"));
      await mkdir(data.file("dir"));
      await appendOnce(storage, "c", numberedMessages(0, 1));
      expect(await listIds(storage, "")).toEqual(["c", "a"]);
    });
  });

  describe("a guarded delete", () => {
    it("keeps a session that has a request admitted but not yet acknowledged", async () => {
      const storage = await data.openStorage({ flushMessages: 1000 });
      await appendOnce(storage, "s", numberedMessages(0, 1), { sync: true });
      await tick();
      const cutoff = Date.now();
      // A durable request waits for its fsync: admitted, not yet acknowledged.
      const pending = storage.append("s", bytesOf(numberedMessages(1, 1)), { sync: true });
      expect(await storage.delete("s", { updatedBeforeMs: cutoff })).toBe(false);
      await (await pending).ack;
      expect((await storage.meta("s"))?.messageCount).toBe(2);
    });

    it("judges a session not in use by its file", async () => {
      const first = await data.openStorage();
      await appendOnce(first, "old", numberedMessages(0, 1), { sync: true, labels: { a: "b" } });
      const storage = await data.reopen(first);
      expect(await storage.delete("old", { updatedBeforeMs: 0 })).toBe(false);
      expect(await storage.delete("old", { updatedBeforeMs: Date.now() + 1 })).toBe(true);
      expect(await readdir(labelsDirectory())).toEqual([]);
      expect(await storage.delete("never", { updatedBeforeMs: Date.now() })).toBe(false);
    });
  });
});
