import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppendRequest, type AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { testDatabases } from "../helpers/postgres.js";
import { type Replica, Replicas } from "../helpers/replicas.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { append, appendStream, loadAll } from "../helpers/test-server.js";
import { deleteSession, list, messages, watch } from "../integration/support.js";

const databases = testDatabases();

/**
 * Three server processes on one PostgreSQL database, each call sent to a replica of the test's
 * choosing: what one acknowledges, the others see, in one order per session.
 */
describe("three replicas on one PostgreSQL", skipWithReason(databases.missing), () => {
  let replicas: Replicas;
  const replica = (index: number) => replicas.all[index % 3] as Replica;

  beforeAll(async () => {
    replicas = await Replicas.start(3, await databases.create());
  }, 60_000);

  afterAll(async () => {
    await replicas?.stopAll();
  });

  it("lets exactly one of writers racing with expected_seq on different replicas win each position", async () => {
    let length = 0;
    for (let round = 0; round < 20; round++) {
      const outcomes = await Promise.all(
        [0, 1, 2].map((writer) =>
          appendStream(replica(writer).client, [
            {
              sessionId: "race",
              messages: messages(`w${writer}r${round}`, 1 + (round % 3)),
              expectedSeq: length,
              sync: round % 2 === 0,
            },
          ]),
        ),
      );
      const won = outcomes.filter((outcome) => outcome.error === undefined);
      expect(won).toHaveLength(1);
      for (const lost of outcomes.filter((outcome) => outcome.error !== undefined)) {
        expect(lost.error?.code).toBe(status.ABORTED);
      }
      const ack = won[0]?.acks[0] as AppendResponse;
      expect(ack.firstSeq).toBe(length);
      length = ack.nextSeq;
    }
    for (const index of [0, 1, 2]) {
      expect((await loadAll(replica(index).client, "race")).messages).toHaveLength(length);
    }
  });

  it("recognises a request resent to another replica after a cut stream, storing it once", async () => {
    const requests = Array.from({ length: 30 }, (_, i) => ({
      sessionId: "resent",
      messages: messages("r", 2, i * 2),
      expectedSeq: i * 2,
      sync: i % 4 === 0,
    }));
    const acked = await new Promise<number>((resolve) => {
      const stream = replica(0).client.append();
      let acks = 0;
      stream.on("data", () => {
        if (++acks === 9) {
          stream.cancel();
          resolve(acks);
        }
      });
      stream.on("error", () => resolve(acks));
      for (const request of requests) stream.write(AppendRequest.fromPartial(request));
    });
    const resent = await append(replica(1).client, requests.slice(acked));
    expect(resent.map((ack) => ack.firstSeq)).toEqual(
      requests.slice(acked).map((r) => r.expectedSeq),
    );
    expect((await loadAll(replica(2).client, "resent")).messages).toEqual(
      requests.flatMap((request) => request.messages),
    );
  });

  it("shows on replica B, at once, what replica A just acknowledged", async () => {
    for (let i = 0; i < 40; i++) {
      const writer = replica(i);
      const reader = replica(i + 1);
      const [ack] = await append(writer.client, [
        { sessionId: "read-after-ack", messages: messages("x", 1, i), sync: i % 2 === 0 },
      ]);
      expect(ack?.nextSeq).toBe(i + 1);
      const loaded = await loadAll(reader.client, "read-after-ack");
      expect(loaded.messages).toHaveLength(i + 1);
      expect(loaded.messages.at(-1)).toBe(messages("x", 1, i)[0]);
    }
  });

  it("streams every message to watchers on every replica, in order, each once", async () => {
    const watchers = [0, 1, 2].map((index) => watch(replica(index).client, "watched"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await Promise.all(
      [0, 1, 2].map(async (writer) => {
        for (let i = 0; i < 20; i++) {
          await append(replica(writer).client, [
            { sessionId: "watched", messages: messages(`w${writer}`, 2, i * 2), sync: i % 5 === 0 },
          ]);
        }
      }),
    );
    const stored = (await loadAll(replica(0).client, "watched")).messages;
    expect(stored).toHaveLength(120);
    for (const watcher of watchers) {
      await expect.poll(() => watcher.received.length, { timeout: 5000 }).toBe(120);
      expect(watcher.received).toEqual(stored);
      watcher.call.cancel();
    }
  });

  it("ends the watchers on the other replicas with NOT_FOUND when a Delete on one removes the session", async () => {
    await append(replica(0).client, [{ sessionId: "doomed", messages: messages("d", 3) }]);
    const watchers = [1, 2].map((index) => watch(replica(index).client, "doomed"));
    for (const watcher of watchers) await expect.poll(() => watcher.received.length).toBe(3);
    expect(await deleteSession(replica(0).client, "doomed")).toEqual({ existed: true });
    for (const watcher of watchers) {
      const error = await watcher.ended;
      expect(error?.code).toBe(status.NOT_FOUND);
    }
  });

  it("lists the same sessions, with the same counts, on every replica", async () => {
    for (let i = 0; i < 12; i++) {
      await append(replica(i).client, [
        { sessionId: `listed-${i}`, messages: messages("l", i + 1) },
      ]);
    }
    const views = await Promise.all(
      [0, 1, 2].map(async (index) =>
        (await list(replica(index).client, { prefix: "listed-", pageSize: 5 })).sessions.map(
          (meta) => [meta.sessionId, meta.messageCount],
        ),
      ),
    );
    expect(views[0]).toHaveLength(5);
    expect(views[1]).toEqual(views[0]);
    expect(views[2]).toEqual(views[0]);
  });
});
