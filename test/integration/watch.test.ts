import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { append, loadAll } from "../helpers/test-server.js";
import { deleteSession, describeEachBackend, flush, messages, watch } from "./support.js";

describeEachBackend(
  "Watch",
  (start) => {
    it("streams a session created after the watch began, each message once, across flushes", async () => {
      const server = await start();
      const watcher = watch(server.client, "later");
      const sent = messages("later", 10);
      for (let i = 0; i < sent.length; i += 2) {
        await append(server.client, [{ sessionId: "later", messages: sent.slice(i, i + 2) }]);
      }
      await expect.poll(() => watcher.received).toEqual(sent);
      expect((await loadAll(server.client, "later")).messages).toEqual(watcher.received);
      watcher.call.cancel();
    });

    it("catches up from from_seq (stored and buffered), then follows live appends", async () => {
      const server = await start();
      const before = messages("mid", 8);
      await append(server.client, [{ sessionId: "mid", messages: before }]); // 6 written, 2 buffered
      const fromMiddle = watch(server.client, "mid", 5);
      const fromStart = watch(server.client, "mid", 0);
      await expect.poll(() => fromMiddle.received).toEqual(before.slice(5));
      const after = messages("mid", 7, 8);
      await append(server.client, [{ sessionId: "mid", messages: after.slice(0, 4) }]);
      await flush(server.client, "mid");
      await append(server.client, [{ sessionId: "mid", messages: after.slice(4) }]);
      await expect.poll(() => fromMiddle.received).toEqual([...before, ...after].slice(5));
      await expect.poll(() => fromStart.received).toEqual([...before, ...after]);
      fromMiddle.call.cancel();
      fromStart.call.cancel();
    });

    it("lets many watchers follow one session, all seeing the same order as Load", async () => {
      const server = await start();
      const watchers = [
        watch(server.client, "many"),
        watch(server.client, "many"),
        watch(server.client, "many", 3),
      ];
      const streams = [0, 1, 2].map((writer) =>
        append(
          server.client,
          Array.from({ length: 20 }, (_, i) => ({
            sessionId: "many",
            messages: messages(`w${writer}`, 2, i * 2),
          })),
        ),
      );
      await Promise.all(streams);
      const log = (await loadAll(server.client, "many")).messages;
      expect(log).toHaveLength(120);
      await expect.poll(() => watchers[0]?.received).toEqual(log);
      await expect.poll(() => watchers[1]?.received).toEqual(log);
      await expect.poll(() => watchers[2]?.received).toEqual(log.slice(3));
      for (const watcher of watchers) watcher.call.cancel();
    });

    it("lets writers finish 10,000 messages while a watcher reads nothing, which then catches up exactly once", async () => {
      const server = await start({ flushMessages: 100 });
      const slow = watch(server.client, "firehose");
      slow.call.pause(); // reads nothing: the server must neither block writers nor queue for it
      const payload = "x".repeat(1000);
      const requests = Array.from({ length: 200 }, (_, i) => ({
        sessionId: "firehose",
        messages: Array.from({ length: 50 }, (_, j) => `{"i":${i * 50 + j},"p":"${payload}"}`),
      }));
      const acks = await append(server.client, requests); // 10,000 messages, ~10 MB
      expect(acks.at(-1)?.nextSeq).toBe(10_000);
      slow.call.resume();
      await expect.poll(() => slow.received.length, { timeout: 20_000 }).toBe(10_000);
      expect(slow.received).toEqual(requests.flatMap((request) => request.messages));
      slow.call.cancel();
    });

    it("ends watchers with NOT_FOUND when the session is deleted", async () => {
      const server = await start();
      await append(server.client, [{ sessionId: "doomed", messages: messages("d", 2) }]);
      const watcher = watch(server.client, "doomed");
      await expect.poll(() => watcher.received).toHaveLength(2);
      await deleteSession(server.client, "doomed");
      const error = await watcher.ended;
      expect(error?.code).toBe(status.NOT_FOUND);
      expect(error?.details).toContain("deleted");
    });

    it("ends watchers with UNAVAILABLE when the server shuts down", async () => {
      const server = await start();
      const watcher = watch(server.client, "waiting");
      await append(server.client, [{ sessionId: "waiting", messages: messages("s", 1) }]);
      await expect.poll(() => watcher.received).toHaveLength(1);
      await server.stop();
      const error = await watcher.ended;
      expect(error?.code).toBe(status.UNAVAILABLE);
    });

    it("rejects an invalid session id with INVALID_ARGUMENT", async () => {
      const server = await start();
      const error = await watch(server.client, "../x").ended;
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
    });
  },
  { defaults: { flushMessages: 3, flushIntervalMs: 60_000 } },
);
