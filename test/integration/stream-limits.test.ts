import { credentials, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../gen/sessionstore/v1/session_store.js";
import type { TestServer } from "../helpers/test-server.js";
import { append, appendStream, loadAll } from "../helpers/test-server.js";
import {
  expectStatus,
  expectStreamError,
  messages,
  serversClosedAfterEach,
  sleep,
  type Watching,
  watch,
} from "./support.js";

/** Clients of their own connection each (grpc-js otherwise shares one among equal clients). */
const clients: SessionStoreClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function clientOnItsOwnConnection(server: TestServer): SessionStoreClient {
  const client = new SessionStoreClient(server.server.address, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
  clients.push(client);
  return client;
}

/** Watchers that have received the session's first message: their streams run on the server. */
function running(watchers: Watching[]): number {
  return watchers.filter((watcher) => watcher.received.length > 0).length;
}

describe("stream limits", () => {
  const start = serversClosedAfterEach({ storage: "memory" });

  it("lets Append through while one client holds 1000 idle Watch streams (the default limits)", async () => {
    const server = await start();
    await append(server.client, [{ sessionId: "watched", messages: messages("watched", 1) }]);
    const { maxReadStreams, maxStreamsPerConnection } = server.config;
    expect(maxReadStreams).toBe(1000);
    // One reader, on as many connections as it takes to open them all.
    const watchers: Watching[] = [];
    for (let opened = 0; opened < maxReadStreams; opened += maxStreamsPerConnection) {
      const reader = clientOnItsOwnConnection(server);
      const count = Math.min(maxStreamsPerConnection, maxReadStreams - opened);
      for (let i = 0; i < count; i++) watchers.push(watch(reader, "watched"));
    }
    await expect.poll(() => running(watchers), { timeout: 20_000 }).toBe(1000);

    // The reads are full: one more is refused, naming its setting...
    await expectStatus(
      loadAll(server.client, "watched"),
      status.RESOURCE_EXHAUSTED,
      /--max-read-streams/,
    );
    // ...and writers are not affected.
    const writer = clientOnItsOwnConnection(server);
    const acks = await append(writer, [{ sessionId: "written", messages: messages("w", 3) }]);
    expect(acks.map((ack) => ack.nextSeq)).toEqual([3]);
    for (const watcher of watchers) watcher.call.cancel();
  }, 60_000);

  it("refuses reads past --max-read-streams, keeps serving appends, and reads again once one ends", async () => {
    const server = await start({ maxReadStreams: 2 });
    const watchers = [watch(server.client, "held"), watch(server.client, "held")];
    await append(server.client, [{ sessionId: "held", messages: messages("held", 1) }]);
    await expect.poll(() => running(watchers)).toBe(2);
    const refused = watch(server.client, "held");
    expectStreamError(await refused.ended, status.RESOURCE_EXHAUSTED, /--max-read-streams/);
    expect(
      (await appendStream(server.client, [{ sessionId: "held", messages: ["{}"] }])).error,
    ).toBeUndefined();
    watchers[0]?.call.cancel();
    await expect
      .poll(async () => (await loadAll(server.client, "held").catch(() => undefined))?.messages)
      .toHaveLength(2);
    watchers[1]?.call.cancel();
  });

  it("queues streams past --max-streams-per-connection in the client, not failing them", async () => {
    const server = await start({ maxStreamsPerConnection: 5 });
    await append(server.client, [{ sessionId: "queued", messages: messages("queued", 1) }]);
    const client = clientOnItsOwnConnection(server);
    const watchers = Array.from({ length: 8 }, () => watch(client, "queued"));
    await expect.poll(() => running(watchers)).toBe(5);
    await sleep(200);
    expect(running(watchers), "the other three wait for room on the connection").toBe(5);
    watchers[0]?.call.cancel();
    watchers[1]?.call.cancel();
    await expect.poll(() => running(watchers.slice(2))).toBe(5);
    const settled = await Promise.race([
      Promise.any(watchers.slice(2).map((watcher) => watcher.ended)),
      sleep(100).then(() => "still watching"),
    ]);
    expect(settled, "no queued stream failed").toBe("still watching");
    for (const watcher of watchers) watcher.call.cancel();
  });
});
