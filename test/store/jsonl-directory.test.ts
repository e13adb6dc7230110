import {
  appendFile,
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { Code } from "../../src/errors.js";
import { listByIdQuery } from "../../src/store/storage.js";
import { appendOnce, numberedMessages, readMessages, rejection } from "./conformance.js";
import {
  CAN_MOUNT,
  linesOf,
  MOTOSAN_FIXTURES,
  makeTempDir,
  mountSmallDisk,
  newStorage,
  useDataDirectory,
} from "./jsonl-support.js";

/** A pino logger whose lines the test can read. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: "info" },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

/**
 * The data directory as others change it while the server runs: files that appear, move, are
 * appended to or deleted, and entries the server must not use.
 */
describe("JsonlFileStorage data directory", () => {
  const data = useDataDirectory();

  describe("a session file that appears while the server runs", () => {
    it("is served from the next call on: Load, LoadMeta, List and appends, never destroyed", async () => {
      const storage = await data.openStorage();
      expect(await storage.meta("dropped")).toBeUndefined();
      const motosan = await readFile(join(MOTOSAN_FIXTURES, "precise.jsonl"), "utf8");
      await writeFile(data.file("dropped"), motosan);

      expect(await storage.meta("dropped")).toMatchObject({
        messageCount: 2,
        agentLoopVersion: "0.7.1",
      });
      expect(await readMessages(storage, "dropped")).toStrictEqual(linesOf(motosan).slice(1));
      await vi.waitFor(async () =>
        expect((await storage.list(listByIdQuery("", "", 10))).map((m) => m.sessionId)).toEqual([
          "dropped",
        ]),
      );
      const ack = await appendOnce(storage, "dropped", numberedMessages(2, 1), { sync: true });
      expect(ack).toMatchObject({ firstSeq: 2, nextSeq: 3 });
      await storage.flush("dropped");
      expect(await data.readText("dropped")).toBe(`${motosan}${numberedMessages(2, 1)[0]}\n`);
    });

    it("is continued, not replaced, by a buffered append that creates the session", async () => {
      const storage = await data.openStorage();
      const motosan = await data.copyFixture("agent-7f3a", undefined, "new-one");
      // The first call for the id is an append: creating the session opens the file instead.
      const ack = await appendOnce(storage, "new-one", numberedMessages(5, 1));
      expect(ack).toMatchObject({ firstSeq: 5, nextSeq: 6 });
      await storage.flush();
      expect(await data.readText("new-one")).toBe(`${motosan}${numberedMessages(5, 1)[0]}\n`);
    });

    it("is listed without any call naming it", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "a-own", numberedMessages(0, 1));
      await data.copyFixture("agent-7f3a", undefined, "b-dropped");
      await vi.waitFor(async () =>
        expect(
          (await storage.list(listByIdQuery("", "", 10))).map((m) => [m.sessionId, m.messageCount]),
        ).toEqual([
          ["a-own", 1],
          ["b-dropped", 5],
        ]),
      );
    });
  });

  describe("a session file changed under the server", () => {
    it("is never written past someone else's append; the server reads it anew", async () => {
      const storage = await data.openStorage({ flushMessages: 1000 });
      await appendOnce(storage, "s", numberedMessages(0, 2), { sync: true });
      // motosan (or an editor) appends a record while the server has the session open.
      await appendFile(data.file("s"), '{"theirs":true}\n');
      const failed = await rejection(
        appendOnce(storage, "s", numberedMessages(2, 1), { sync: true }),
      );
      expect(failed.code).toBe(Code.Unavailable);
      expect(failed.message).toMatch(/changed outside the server|appended to outside the server/);
      expect(await data.readText("s")).toContain('{"theirs":true}\n');
      // The next call sees the file as it is now, and appends after the record it holds.
      expect(await readMessages(storage, "s")).toStrictEqual([
        ...numberedMessages(0, 2),
        '{"theirs":true}',
      ]);
      const ack = await appendOnce(storage, "s", numberedMessages(3, 1), { sync: true });
      expect(ack.firstSeq).toBe(3);
    });

    it("keeps acknowledged messages it could not write to a replaced file in a rescue file", async () => {
      const { log, lines } = capturedLog();
      const storage = await data.openStorage({ log });
      await appendOnce(storage, "s", numberedMessages(0, 2), { sync: true });
      await appendOnce(storage, "s", numberedMessages(2, 3)); // acknowledged, buffered
      const replacement = `${data.file("s")}.new`;
      await writeFile(replacement, '{"restored":1}\n');
      await rename(replacement, data.file("s"));
      await vi.waitFor(async () =>
        expect(await readMessages(storage, "s")).toStrictEqual(['{"restored":1}']),
      );
      const rescuedDir = join(data.directory, ".sessionstore", "rescued");
      await vi.waitFor(async () => expect(await readdir(rescuedDir)).toHaveLength(1));
      const [rescued] = await readdir(rescuedDir);
      const text = await readFile(join(rescuedDir, rescued as string), "utf8");
      const [header, ...messages] = text.trimEnd().split("\n");
      expect(JSON.parse(header as string)).toMatchObject({ session_id: "s", first_seq: 2 });
      expect(messages).toStrictEqual(numberedMessages(2, 3));
      expect(
        lines.some((line) => line.level === 50 && String(line.msg).includes("outside the server")),
      ).toBe(true);
    });

    it("ends when the file is deleted outside the server; the session then does not exist", async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", numberedMessages(0, 2), { sync: true });
      const changes: string[] = [];
      storage.subscribe("s", (change) => changes.push(change.kind));
      await unlink(data.file("s"));
      await vi.waitFor(() => expect(changes).toContain("replaced"));
      expect(await storage.meta("s")).toBeUndefined();
    });
  });

  describe("entries the server does not use", () => {
    it("skips a directory named like a session file in List, which keeps paging; refuses to serve it", async () => {
      const storage = await data.openStorage();
      for (const id of ["a", "c", "e"]) await appendOnce(storage, id, numberedMessages(0, 1, id));
      await mkdir(data.file("b"));
      await mkdir(data.file("d"));
      const ids: string[] = [];
      let after = "";
      for (;;) {
        const page = await storage.list(listByIdQuery("", after, 2));
        if (page.length === 0) break;
        ids.push(...page.map((meta) => meta.sessionId));
        after = page.at(-1)?.sessionId as string;
      }
      expect(ids).toEqual(["a", "c", "e"]);
      const error = await rejection(storage.meta("b"));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.message).toMatch(/not a regular file/);
      expect(error.message).not.toContain(data.directory);
      expect((await rejection(storage.delete("b"))).code).toBe(Code.FailedPrecondition);
      expect((await stat(data.file("b"))).isDirectory()).toBe(true);
    });

    it("never follows a symbolic link out of the data directory, nor modifies it", async () => {
      const elsewhere = await makeTempDir("elsewhere-");
      const target = join(elsewhere, "secret.jsonl");
      const secret = `${JSON.stringify({ session_id: "evil", created_at_ms: 1, agent_loop_version: "x", message_count: 1 })}\n{"secret":true}\n`;
      await writeFile(target, secret);
      await symlink(target, data.file("evil"));
      const { log, lines } = capturedLog();
      const storage = await data.openStorage({ log });

      expect(await storage.list(listByIdQuery("", "", 10))).toEqual([]);
      for (const call of [
        () => storage.meta("evil"),
        () => readMessages(storage, "evil"),
        () => appendOnce(storage, "evil", ['{"x":1}'], { sync: true }),
        () => storage.delete("evil"),
      ]) {
        const error = await rejection(call());
        expect(error.code).toBe(Code.FailedPrecondition);
        expect(error.message).toMatch(/symbolic link|not a regular file/);
        expect(error.message).not.toContain(elsewhere);
      }
      expect(await readFile(target, "utf8")).toBe(secret);
      expect(lines.some((line) => String(line.msg).includes("symbolic link"))).toBe(true);
    });

    it("refuses to start when its own directory is a link", async () => {
      const elsewhere = await makeTempDir("elsewhere-");
      await symlink(elsewhere, join(data.directory, ".sessionstore"));
      await expect(newStorage(data.directory).open()).rejects.toThrow(/must be a directory/);
    });
  });

  describe("tenants", () => {
    it('keeps the flat layout for the tenant "" and gives each tenant a directory of its own', async () => {
      const storage = await data.openStorage();
      await appendOnce(storage, "s", ['{"t":""}'], { sync: true });
      await appendOnce(storage.tenant("acme"), "s", ['{"t":"acme"}'], { sync: true });
      expect(linesOf(await readFile(join(data.directory, "s.jsonl"), "utf8"))[1]).toBe('{"t":""}');
      const acmeFile = join(data.directory, "tenants", "acme", "s.jsonl");
      expect(linesOf(await readFile(acmeFile, "utf8"))[1]).toBe('{"t":"acme"}');
      // The tenants' directory is not a session, nor are their files the tenant "" sessions.
      expect((await storage.list(listByIdQuery("", "", 10))).map((m) => m.sessionId)).toEqual([
        "s",
      ]);
      const reopened = await data.reopen(storage);
      expect(await reopened.tenants()).toEqual(["", "acme"]);
      expect(await readMessages(reopened.tenant("acme"), "s")).toEqual(['{"t":"acme"}']);
    });

    it("never follows a tenant's directory that is a link out of the data directory", async () => {
      const elsewhere = await makeTempDir("elsewhere-");
      await writeFile(join(elsewhere, "s.jsonl"), '{"secret":1}\n');
      await mkdir(join(data.directory, "tenants"));
      await symlink(elsewhere, join(data.directory, "tenants", "evil"));
      const storage = await data.openStorage();
      for (const call of [
        () => storage.tenant("evil").meta("s"),
        () => appendOnce(storage.tenant("evil"), "s", ['{"x":1}']),
      ]) {
        const error = await rejection(call());
        expect(error.code).toBe(Code.FailedPrecondition);
        expect(error.message).not.toContain(elsewhere);
        expect(error.message).not.toContain(data.directory);
      }
      expect(await readdir(elsewhere)).toEqual(["s.jsonl"]);
      expect(await readFile(join(elsewhere, "s.jsonl"), "utf8")).toBe('{"secret":1}\n');
      // Other tenants are not held up by it.
      await appendOnce(storage.tenant("fine"), "s", ["{}"]);
    });
  });

  describe.skipIf(!CAN_MOUNT)("a full disk", () => {
    it("says at shutdown which sessions it could not write, never that every buffer was written", async () => {
      const disk = await mountSmallDisk("256k");
      try {
        const { log, lines } = capturedLog();
        const storage = newStorage(disk.directory, { log, flushMessages: 1000 });
        await storage.open();
        await appendOnce(storage, "stuck", numberedMessages(0, 1), { sync: true });
        await disk.faults.failWrites();
        await appendOnce(storage, "stuck", [`{"big":"${"x".repeat(64 << 10)}"}`]); // acknowledged, buffered
        await storage.close();
        const messages = lines.map((line) => String(line.msg));
        expect(messages).toContain(
          "acknowledged messages of the session could not be written before shutdown",
        );
        expect(
          messages.some((message) => message.includes("every acknowledged message is written")),
        ).toBe(false);
        expect(lines.at(-1)).toMatchObject({ sessionsNotWritten: 1 });
      } finally {
        await disk.faults.restoreWrites();
        await disk.unmount();
      }
    });
  });
});
