import { describe, expect, it } from "vitest";
import type { Appender, MessageAck, SessionStoreClient } from "../src/index.js";
import { Status } from "../src/index.js";
import { collect, fixturesClosedAfterEach, objects, sleep } from "./support.js";

const fixtures = fixturesClosedAfterEach({ flushMessages: 1000, flushIntervalMs: 60_000 });

/** The session's messages, parsed, checked to have seqs 0, 1, 2, … */
async function logOf(client: SessionStoreClient, sessionId: string): Promise<unknown[]> {
  const entries = await collect(client.load(sessionId));
  expect(entries.map((entry) => entry.seq)).toEqual([...entries.keys()]);
  return entries.map((entry) => entry.message);
}

/**
 * Writes `count` tagged messages as a producer that respects backpressure would, pausing every
 * `pauseEvery` messages; resolves to every message's acknowledgement, in write order.
 */
async function produce(
  appender: Appender,
  tag: string,
  count: number,
  pauseEvery = 50,
): Promise<MessageAck[]> {
  const acks: Promise<MessageAck>[] = [];
  for (let n = 0; n < count; n++) {
    await appender.ready();
    acks.push(appender.write({ tag, n }));
    if (n % pauseEvery === pauseEvery - 1) await sleep(2);
  }
  return Promise.all(acks);
}

describe("appender", () => {
  it("batches the messages written in one tick and acknowledges each with its seq", async () => {
    const { client } = await fixtures.start();
    await client.append("b", { first: true });
    const appender = client.appender("b");
    const acks = await Promise.all(objects("b", 5).map((message) => appender.write(message)));
    expect(acks.map((ack) => ack.seq)).toEqual([1, 2, 3, 4, 5]);
    // One request: every message reports the same length after it.
    expect(new Set(acks.map((ack) => ack.nextSeq))).toEqual(new Set([6]));
    expect(appender.nextSeq).toBe(6);
    const more = await Promise.all([appender.write('{"text":1}'), appender.write({ text: 2 })]);
    expect(more.map((ack) => ack.seq)).toEqual([6, 7]);
    await appender.close();
    expect(await logOf(client, "b")).toEqual([
      { first: true },
      ...objects("b", 5),
      { text: 1 },
      { text: 2 },
    ]);
  });

  it("splits a tick's messages into requests of at most maxBatchMessages", async () => {
    const { client } = await fixtures.start();
    const appender = client.appender("split", { maxBatchMessages: 4 });
    const acks = await Promise.all(objects("s", 10).map((message) => appender.write(message)));
    expect(acks.map((ack) => ack.nextSeq)).toEqual([4, 4, 4, 4, 8, 8, 8, 8, 10, 10]);
    await appender.close();
  });

  it("with sync, acknowledges messages once they are durable", async () => {
    const { client } = await fixtures.start();
    const appender = client.appender("sync", { sync: true });
    const ack = await appender.write({ n: 0 });
    expect(ack).toEqual({ seq: 0, nextSeq: 1, durableCount: 1 });
    await appender.close();
  });

  it("throws at once for a bad message, which fails no other", async () => {
    const { client } = await fixtures.start();
    const appender = client.appender("bad");
    const good = appender.write({ ok: 1 });
    expect(() => appender.write("[1]")).toThrow(/one JSON object/);
    expect(() => appender.write("{")).toThrow(expect.objectContaining({ code: 3 }));
    const alsoGood = appender.write({ ok: 2 });
    expect((await Promise.all([good, alsoGood])).map((ack) => ack.seq)).toEqual([0, 1]);
    await appender.close();
    expect(() => appender.write({ late: true })).toThrow(/closed/);
  });

  it("with expectedSeq, fails with ABORTED and the actual length if another writer got there", async () => {
    const { client } = await fixtures.start();
    await client.append("strict", objects("other", 2));
    const appender = client.appender("strict", { expectedSeq: 1 });
    const first = appender.write({ mine: 1 });
    const second = appender.write({ mine: 2 });
    await expect(first).rejects.toMatchObject({ code: Status.ABORTED, actualLength: 2 });
    await expect(second).rejects.toMatchObject({ code: Status.ABORTED });
    await expect(appender.ready()).rejects.toMatchObject({ code: Status.ABORTED });
    await expect(appender.close()).rejects.toMatchObject({ code: Status.ABORTED });
    expect(appender.error?.actualLength).toBe(2);
    expect(() => appender.write({ more: 1 })).toThrow(/ABORTED/);
    expect(await logOf(client, "strict")).toEqual(objects("other", 2));
  });

  it("without expectedSeq, appends after messages another writer added meanwhile", async () => {
    const { client } = await fixtures.start();
    const appender = client.appender("shared");
    expect((await appender.write({ mine: 0 })).seq).toBe(0);
    await client.append("shared", objects("other", 2));
    const acks = await Promise.all([appender.write({ mine: 1 }), appender.write({ mine: 2 })]);
    expect(acks.map((ack) => ack.seq)).toEqual([3, 4]);
    await appender.close();
    expect(await logOf(client, "shared")).toEqual([
      { mine: 0 },
      ...objects("other", 2),
      { mine: 1 },
      { mine: 2 },
    ]);
  });

  it("fails every unacknowledged message with CANCELLED when its signal aborts", async () => {
    const { server } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address);
    const controller = new AbortController();
    const appender = client.appender("abort", { signal: controller.signal });
    await appender.write({ n: 0 });
    proxy.pause();
    const stuck = appender.write({ n: 1 });
    await sleep(50);
    controller.abort();
    await expect(stuck).rejects.toMatchObject({ code: Status.CANCELLED });
    await expect(appender.close()).rejects.toMatchObject({ code: Status.CANCELLED });
  });

  it("survives dropped connections: the log has every message once, in order", async () => {
    const { server } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address, {
      retry: { initialDelayMs: 10, maxDelayMs: 200 },
    });
    const appender = client.appender("drops", { maxBatchMessages: 20 });
    // The producer writes until the connection has been dropped, with messages in flight, 8 times.
    let drops = 0;
    const acks: Promise<MessageAck>[] = [];
    const producing = (async () => {
      for (let n = 0; drops < 8; n++) {
        await appender.ready();
        acks.push(appender.write({ tag: "d", n }));
        if (n % 10 === 9) await sleep(2);
      }
    })();
    while (drops < 8 && !appender.error) {
      await sleep(30);
      if (appender.pending > 0 && proxy.dropConnections() > 0) drops++;
    }
    await producing;
    const seqs = (await Promise.all(acks)).map((ack) => ack.seq);
    await appender.close();
    expect(seqs).toEqual([...seqs.keys()]);
    expect(await logOf(client, "drops")).toEqual(objects("d", acks.length));
    expect(proxy.connections).toBeGreaterThan(drops);
  });

  it("resends messages the server stored but whose acknowledgements were lost, without duplicates", async () => {
    const { server, client: direct } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address, { retry: { initialDelayMs: 10 } });
    const appender = client.appender("lost-acks");
    await appender.write({ n: 0 });
    // The server stores 1-30 but its acknowledgements never arrive; 31-50 never reach it.
    proxy.pause("responses");
    const acks = objects("n", 30, 1).map((message) => appender.write(message));
    await expect.poll(async () => (await direct.meta("lost-acks"))?.messageCount).toBe(31);
    proxy.pause("requests");
    acks.push(...objects("n", 20, 31).map((message) => appender.write(message)));
    await sleep(50);
    expect(appender.pending).toBe(50);
    proxy.dropConnections();
    proxy.resume();
    // Resent as one request from seq 1: the server has its first 30 messages and stores the rest.
    expect((await Promise.all(acks)).map((ack) => ack.seq)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    await appender.close();
    expect(await logOf(direct, "lost-acks")).toEqual([{ n: 0 }, ...objects("n", 50, 1)]);
  });

  it("survives a server restart: resends what was not acknowledged, stores nothing twice", async () => {
    const first = await fixtures.server({ flushMessages: 7 });
    const client = fixtures.client(first.server.address, {
      retry: { initialDelayMs: 20, maxDelayMs: 500 },
    });
    const appender = client.appender("restart", { maxBatchMessages: 10 });
    const producing = produce(appender, "r", 2000, 20);
    await expect.poll(() => (appender.nextSeq ?? 0) > 500).toBe(true);
    await first.stop();
    const second = await fixtures.server({
      dataDir: first.dataDir,
      listen: first.server.address,
      flushMessages: 7,
    });
    const acks = await producing;
    await appender.close();
    expect(acks.map((ack) => ack.seq)).toEqual([...acks.keys()]);
    const fresh = fixtures.client(second.server.address);
    expect(await logOf(fresh, "restart")).toEqual(objects("r", 2000));
  });

  it("an idle appender reconnects on its next write after a restart", async () => {
    const first = await fixtures.server();
    const client = fixtures.client(first.server.address, {
      retry: { initialDelayMs: 20, maxDelayMs: 500 },
    });
    const appender = client.appender("idle");
    await appender.write({ n: 0 });
    await first.stop();
    await fixtures.server({ dataDir: first.dataDir, listen: first.server.address });
    expect((await appender.write({ n: 1 })).seq).toBe(1);
    await appender.close();
    expect(await logOf(client, "idle")).toEqual([{ n: 0 }, { n: 1 }]);
  });

  it("holds at most maxPendingMessages while the server does not keep up, then catches up", async () => {
    const { server } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address);
    const maxPendingMessages = 200;
    const appender = client.appender("slow", { maxPendingMessages, maxBatchMessages: 50 });
    const padding = "x".repeat(1000);
    await appender.write({ n: -1, padding });
    proxy.pause();
    const heapBefore = process.memoryUsage().heapUsed;
    let written = 0;
    const total = 5000;
    const producing = (async () => {
      for (let n = 0; n < total; n++) {
        await appender.ready();
        void appender.write({ n, padding });
        written++;
      }
    })();
    await sleep(1000);
    // The producer waits: the appender holds what the server has not acknowledged, no more.
    expect(written).toBe(maxPendingMessages);
    expect(appender.pending).toBe(maxPendingMessages);
    expect(appender.full).toBe(true);
    await sleep(200);
    expect(written).toBe(maxPendingMessages);
    // Far less than the 5 MB the producer would have queued without backpressure.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(4 * 1024 * 1024);
    proxy.resume();
    await producing;
    await appender.close();
    const log = await logOf(client, "slow");
    expect(log.map((message) => (message as { n: number }).n)).toEqual([
      -1,
      ...Array.from({ length: total }, (_, n) => n),
    ]);
  });
});
