import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { append, loadAll, startTestServer, type TestServer } from "../helpers/test-server.js";
import { describeEachBackend, flush, loadPages, messages } from "./support.js";

describeEachBackend("Load", (_start, backend) => {
  let running: TestServer;

  beforeAll(async () => {
    // Nothing is written unless a test flushes: what Load returns beyond that comes from buffers.
    running = await startTestServer({
      storage: backend,
      flushMessages: 10_000,
      flushIntervalMs: 60_000,
    });
  });

  afterAll(async () => {
    await running?.close();
  });

  it("returns buffered messages right after the append (read-your-writes)", async () => {
    const { client } = running;
    await append(client, [{ sessionId: "ryw", messages: messages("r", 3) }]);
    expect(await loadAll(client, "ryw")).toEqual({ firstSeq: 0, messages: messages("r", 3) });

    await append(client, [{ sessionId: "ryw", messages: messages("r", 2, 3) }]);
    expect((await loadAll(client, "ryw")).messages).toEqual(messages("r", 5));
  });

  it("streams a large session in pages that join, stored and buffered alike", async () => {
    const { client } = running;
    // About 4 MB: more than one page each of stored and of buffered messages.
    const all = Array.from({ length: 40 }, (_, n) =>
      JSON.stringify({ n, pad: "x".repeat(100_000) }),
    );
    await append(client, [
      { sessionId: "big", messages: all.slice(0, 10) },
      { sessionId: "big", messages: all.slice(10, 20) },
    ]);
    await flush(client, "big");
    await append(client, [
      { sessionId: "big", messages: all.slice(20, 30) },
      { sessionId: "big", messages: all.slice(30, 40) },
    ]);

    const pages = await loadPages(client, "big");
    expect(pages.length).toBeGreaterThan(2);
    let next = 0;
    for (const page of pages) {
      expect(page.firstSeq).toBe(next);
      expect(page.messages.length).toBeGreaterThan(0);
      next += page.messages.length;
    }
    expect(pages.flatMap((page) => page.messages)).toEqual(all);
    // A range across the stored/buffered boundary.
    expect(await loadAll(client, "big", { fromSeq: 15, limit: 10 })).toEqual({
      firstSeq: 15,
      messages: all.slice(15, 25),
    });
  });

  describe("ranges, over 10 messages of which 5 are stored and 5 buffered", () => {
    const log = messages("m", 10);

    beforeAll(async () => {
      await append(running.client, [{ sessionId: "ten", messages: log.slice(0, 5) }]);
      await flush(running.client, "ten");
      await append(running.client, [{ sessionId: "ten", messages: log.slice(5) }]);
    });

    it.each([
      ["everything", {}, 0, 10],
      ["from_seq", { fromSeq: 3 }, 3, 10],
      ["from_seq in the buffer", { fromSeq: 7 }, 7, 10],
      ["limit", { limit: 4 }, 0, 4],
      ["from_seq and limit across the boundary", { fromSeq: 3, limit: 4 }, 3, 7],
      ["limit past the end", { fromSeq: 8, limit: 100 }, 8, 10],
      ["last", { limit: 3, last: true }, 7, 10],
      ["last across the boundary", { limit: 6, last: true }, 4, 10],
      ["last with from_seq", { fromSeq: 8, limit: 3, last: true }, 8, 10],
      ["last with from_seq before the tail", { fromSeq: 2, limit: 3, last: true }, 7, 10],
      ["last longer than the session", { limit: 50, last: true }, 0, 10],
      ["last without a limit", { last: true }, 0, 10],
    ])("%s", async (_, options, from, to) => {
      const loaded = await loadAll(running.client, "ten", options);
      expect(loaded).toEqual({ firstSeq: from, messages: log.slice(from, to) });
    });

    it.each([
      ["from_seq at the end", { fromSeq: 10 }],
      ["from_seq beyond the end", { fromSeq: 11 }],
      ["from_seq far beyond the end, with last", { fromSeq: 1000, limit: 5, last: true }],
    ])("%s gives nothing", async (_, options) => {
      expect(await loadPages(running.client, "ten", options)).toEqual([]);
    });
  });

  it("loads an unknown session as empty", async () => {
    expect(await loadPages(running.client, "never-written")).toEqual([]);
    expect(await loadPages(running.client, "never-written", { fromSeq: 5, limit: 2 })).toEqual([]);
  });
});
