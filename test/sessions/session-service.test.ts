import { pino } from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import {
  MAX_PAGE_SIZE,
  SessionService,
  type SessionServiceOptions,
} from "../../src/sessions/session-service.js";
import type { MessagePage } from "../../src/store/storage.js";
import { FaultyStorage } from "../helpers/faulty-storage.js";
import { bytesOf, textsOf } from "../helpers/message-bytes.js";
import { numberedMessages, rejection } from "../store/conformance.js";

const WHOLE_SESSION = { fromSeq: 0, limit: 0, last: false, maxBytes: 0, wholeTurns: false };
const BY_ID = { labelSelector: "", order: "id" } as const;

const OPTIONS: SessionServiceOptions = {
  durability: "buffered",
  maxMessageBytes: 1 << 20,
  maxRequestMessages: 100,
};

/** The session layer over the memory backend, behind a wrapper that records and fails calls. */
describe("SessionService", () => {
  let storage: FaultyStorage;
  let service: SessionService;

  beforeEach(async () => {
    storage = new FaultyStorage();
    await storage.open();
    service = new SessionService(storage, OPTIONS, pino({ level: "silent" }));
  });

  async function append(sessionId: string, messages: string[], sync = false) {
    const { ack } = await service.append("", sessionId, bytesOf(messages), { sync });
    return ack;
  }

  async function loadAll(sessionId: string): Promise<string[]> {
    const messages: string[] = [];
    for await (const page of service.load("", sessionId, WHOLE_SESSION)) {
      messages.push(...textsOf(page.messages));
    }
    return messages;
  }

  describe("what reaches storage", () => {
    it("refuses a bad session id or message before storage sees the request", async () => {
      const calls = () => storage.calls.filter((call) => call.method === "append").length;
      expect(() => service.append("", "../escape", bytesOf(['{"a":1}']), { sync: false })).toThrow(
        /session id/,
      );
      expect(() => service.append("", "ok", bytesOf(['{"a":1}', "[1]"]), { sync: false })).toThrow(
        /not an object/,
      );
      expect(() =>
        service.append("", "ok", bytesOf(["{}"]), { sync: false, expectedSeq: 0 }),
      ).not.toThrow();
      expect(calls()).toBe(1);
      expect(() => service.load("", "bad id", WHOLE_SESSION)).toThrow(/session id/);
      await expect(service.meta("", "")).rejects.toThrow(/session id/);
      await expect(service.delete("", ".hidden")).rejects.toThrow(/session id/);
    });

    it("passes messages on normalized (raw CR/LF as spaces) and asks for sync under --durability sync", async () => {
      const strict = new SessionService(
        storage,
        { ...OPTIONS, durability: "sync" },
        pino({ level: "silent" }),
      );
      await strict.append("", "s", bytesOf(['{\r\n"a": 1\n}']), { sync: false });
      const [call] = storage.calls.filter((c) => c.method === "append");
      expect(call?.options?.sync).toBe(true);
      expect(await loadAll("s")).toEqual(['{  "a": 1 }']);
    });

    it("passes storage failures through, at admission and after it", async () => {
      storage.fail("append", new SessionStoreError(Code.Unavailable, "storage is down"));
      expect(() => service.append("", "s", bytesOf(["{}"]), { sync: false })).toThrow(
        /storage is down/,
      );
      storage.fail("ack", new SessionStoreError(Code.ResourceExhausted, "disk full"));
      const error = await rejection(append("s", ["{}"], true));
      expect(error.code).toBe(Code.ResourceExhausted);
    });
  });

  describe("List", () => {
    it("pages with tokens it made, by id, clamping the page size", async () => {
      for (let i = 0; i < 5; i++) await append(`s${i}`, ["{}"]);
      const first = await service.list("", { pageSize: 2, pageToken: "", prefix: "", ...BY_ID });
      expect(first.sessions.map((meta) => meta.sessionId)).toEqual(["s0", "s1"]);
      const second = await service.list("", {
        pageSize: 2,
        pageToken: first.nextPageToken,
        prefix: "",
        ...BY_ID,
      });
      expect(second.sessions.map((meta) => meta.sessionId)).toEqual(["s2", "s3"]);
      const last = await service.list("", {
        pageSize: 2,
        pageToken: second.nextPageToken,
        prefix: "",
        ...BY_ID,
      });
      expect(last.sessions.map((meta) => meta.sessionId)).toEqual(["s4"]);
      expect(last.nextPageToken).toBe("");
      await expect(
        service.list("", { pageSize: 2, pageToken: "not-ours!", prefix: "", ...BY_ID }),
      ).rejects.toThrow(/page_token/);
      await service.list("", { pageSize: 1_000_000, pageToken: "", prefix: "", ...BY_ID });
      // Asked for one more than a page, to know whether another page follows.
      const limits = storage.calls
        .filter((call) => call.method === "list")
        .map((call) => call.query?.limit);
      expect(limits).toEqual([3, 3, 3, MAX_PAGE_SIZE + 1]);
    });

    it("passes a failing page's error through", async () => {
      storage.fail("list", new SessionStoreError(Code.Unavailable, "try again"));
      await expect(
        service.list("", { pageSize: MAX_PAGE_SIZE, pageToken: "", prefix: "", ...BY_ID }),
      ).rejects.toThrow(/try again/);
    });
  });

  describe("Watch", () => {
    /** Collects what a watch yields until `until` holds, then stops it. */
    async function watchUntil(
      sessionId: string,
      fromSeq: number,
      until: (messages: string[]) => boolean,
      signal?: AbortSignal,
    ): Promise<{ messages: string[]; pages: MessagePage[] }> {
      const pages: MessagePage[] = [];
      const messages: string[] = [];
      for await (const event of service.watch("", sessionId, fromSeq, signal)) {
        const page = event as MessagePage;
        if (page.firstSeq !== fromSeq + messages.length) throw new Error("a gap in the watch");
        pages.push(page);
        messages.push(...textsOf(page.messages));
        if (until(messages)) break;
      }
      return { messages, pages };
    }

    it("catches up, then streams each new message once, for a session created while it waits", async () => {
      const watching = watchUntil("later", 0, (messages) => messages.length === 5);
      await new Promise((resolve) => setTimeout(resolve, 10));
      await append("later", numberedMessages(0, 2));
      await append("later", numberedMessages(2, 3), true);
      expect((await watching).messages).toEqual(numberedMessages(0, 5));
      const fromMiddle = await watchUntil("later", 3, (messages) => messages.length === 2);
      expect(fromMiddle.messages).toEqual(numberedMessages(3, 2));
      expect(storage.subscriberCount).toBe(0);
    });

    it("ends with NOT_FOUND when the session is deleted and ABORTED when it is replaced", async () => {
      await append("gone", ["{}"]);
      const deleted = watchUntil("gone", 0, () => false);
      await new Promise((resolve) => setTimeout(resolve, 10));
      await service.delete("", "gone");
      expect((await rejection(deleted)).code).toBe(Code.NotFound);

      await append("swapped", ["{}"]);
      const replaced = watchUntil("swapped", 0, () => false);
      await new Promise((resolve) => setTimeout(resolve, 10));
      storage.announce("swapped", { kind: "replaced" });
      const error = await rejection(replaced);
      expect(error.code).toBe(Code.Aborted);
      expect(error.message).toMatch(/again from seq 0/);
      expect(storage.subscriberCount).toBe(0);
    });

    it("passes a read failure through, after the pages before it", async () => {
      await append("rotten", numberedMessages(0, 2));
      storage.fail("read", new SessionStoreError(Code.DataLoss, "corrupt record at seq 2"), {
        afterPages: 1,
      });
      const pages: MessagePage[] = [];
      const error = await rejection(
        (async () => {
          for await (const page of service.watch("", "rotten", 0)) pages.push(page as MessagePage);
        })(),
      );
      expect(error.code).toBe(Code.DataLoss);
      expect(textsOf(pages.flatMap((page) => page.messages))).toEqual(numberedMessages(0, 2));
      expect(storage.subscriberCount).toBe(0);
    });

    it("ends quietly when its signal aborts while it waits", async () => {
      const stop = new AbortController();
      const watching = watchUntil("idle", 0, () => false, stop.signal);
      await new Promise((resolve) => setTimeout(resolve, 10));
      stop.abort();
      expect((await watching).messages).toEqual([]);
      expect(storage.subscriberCount).toBe(0);
    });
  });

  it("flushes one session or all, passing failures on", async () => {
    await append("a", ["{}"]);
    expect(await service.flush("", "")).toEqual({ flushed: 0, failures: [] });
    expect(storage.calls.at(-1)).toEqual({ method: "flush" });
    await service.flush("", "a");
    expect(storage.calls.at(-1)).toEqual({ method: "flush", sessionId: "a" });
    storage.fail("flush", new SessionStoreError(Code.DataLoss, "corrupt"));
    expect((await rejection(service.flush("", "a"))).code).toBe(Code.DataLoss);
  });

  it("refuses new appends, watches and deletes once closing, with UNAVAILABLE", async () => {
    await service.close();
    const calls: (() => unknown)[] = [
      () => service.append("", "s", bytesOf(["{}"]), { sync: false }),
      () => service.watch("", "s", 0).next(),
      () => service.delete("", "s"),
    ];
    for (const call of calls) {
      const error = await rejection(Promise.resolve().then(call));
      expect(error.code).toBe(Code.Unavailable);
    }
  });
});
