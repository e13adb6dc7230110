import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListOrder, type WatchResponse } from "../../gen/sessionstore/v1/session_store.js";
import { testDatabases } from "../helpers/postgres.js";
import { type Replica, Replicas } from "../helpers/replicas.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { append, loadAll, unaryRpcs } from "../helpers/test-server.js";
import { list, messages } from "../integration/support.js";

const databases = testDatabases();

/**
 * Labels, Fork and Rewind across three server processes on one PostgreSQL database: what one
 * replica changes, the others see and tell their watchers, with one winner per race.
 */
describe("labels, forks and rewinds across replicas", skipWithReason(databases.missing), () => {
  let replicas: Replicas;
  const replica = (index: number) => replicas.all[index % 3] as Replica;
  const rpc = (index: number) => unaryRpcs(replica(index).client);

  beforeAll(async () => {
    replicas = await Replicas.start(3, await databases.create());
  }, 60_000);

  afterAll(async () => {
    await replicas?.stopAll();
  });

  it("tells a watcher on one replica of a rewind on another, then streams what follows", async () => {
    await append(replica(0).client, [{ sessionId: "r", messages: messages("m", 4) }]);
    const events: WatchResponse[] = [];
    const watching = replica(1).client.watch({ sessionId: "r", fromSeq: 0 });
    watching.on("data", (event: WatchResponse) => events.push(event));
    watching.on("error", () => undefined);
    await expect.poll(() => events.flatMap((event) => event.messages).length).toBe(4);

    const rewound = await rpc(0).rewind({ sessionId: "r", toSeq: 1, expectedSeq: 4 });
    expect(rewound.droppedMessages).toStrictEqual(messages("m", 3, 1));
    await append(replica(2).client, [{ sessionId: "r", messages: ['{"new":1}'], expectedSeq: 1 }]);

    await expect.poll(() => events.at(-1)?.messages).toStrictEqual(['{"new":1}']);
    watching.cancel();
    const rewoundAt = events.findIndex((event) => event.rewoundTo !== undefined);
    expect(events[rewoundAt]).toMatchObject({ rewoundTo: 1, firstSeq: 1, messages: [] });
    expect(events.slice(rewoundAt + 1)).toMatchObject([{ firstSeq: 1, messages: ['{"new":1}'] }]);
  });

  it("lets one of label changes racing on two replicas with one expected revision win, and lists by them everywhere", async () => {
    await append(replica(0).client, [
      { sessionId: "labelled", messages: messages("l", 2), labels: { user: "alice" } },
    ]);
    const outcomes = await Promise.allSettled(
      [1, 2].map((index) =>
        rpc(index).setLabels({
          sessionId: "labelled",
          labels: { by: `replica-${index}` },
          expectedLabelsRevision: 1,
        }),
      ),
    );
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    expect(won).toHaveLength(1);
    const lost = outcomes.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason.code).toBe(status.ABORTED);

    await append(replica(1).client, [{ sessionId: "other", messages: messages("o", 1) }]);
    for (const index of [0, 1, 2]) {
      const page = await list(replica(index).client, {
        labelSelector: "user=alice,by",
        order: ListOrder.LIST_ORDER_BY_UPDATED_DESC,
      });
      expect(page.sessions.map((meta) => [meta.sessionId, meta.labelsRevision])).toEqual([
        ["labelled", 2],
      ]);
    }
  });

  it("forks on one replica what others read whole, and keeps it when the source goes", async () => {
    await append(replica(0).client, [{ sessionId: "source", messages: messages("s", 10) }]);
    const { meta } = await rpc(1).fork({ sessionId: "source", atSeq: 6, newSessionId: "branch" });
    expect(meta).toMatchObject({ parentSessionId: "source", parentSeq: 6, messageCount: 6 });
    await append(replica(2).client, [
      { sessionId: "branch", messages: messages("b", 1, 6), expectedSeq: 6 },
    ]);
    await rpc(0).rewind({ sessionId: "source", toSeq: 2 });
    await rpc(1).delete({ sessionId: "source" });
    const branch = [...messages("s", 6), ...messages("b", 1, 6)];
    for (const index of [0, 1, 2]) {
      expect((await loadAll(replica(index).client, "branch")).messages).toStrictEqual(branch);
    }
  });
});
