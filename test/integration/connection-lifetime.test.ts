import { once } from "node:events";
import { type ClientHttp2Session, connect, constants as http2 } from "node:http2";
import { type ServiceError, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import type { TestServer } from "../helpers/test-server.js";
import { append, loadAll } from "../helpers/test-server.js";
import { expectStreamError, serversClosedAfterEach, sleep, watch } from "./support.js";

/** A bare HTTP/2 connection to the server, once its handshake is done. */
async function connectBare(server: TestServer): Promise<ClientHttp2Session> {
  const session = connect(`http://${server.server.address}`);
  // The server ends these connections on purpose; the tests look at how, not at the error.
  session.on("error", () => undefined);
  await once(session, "remoteSettings");
  return session;
}

/** Resolves once the connection has closed, whether or not with an error. */
function closed(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.once("close", resolve));
}

/** Sends a PING and waits for its acknowledgement. */
function ping(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.ping((error) => (error ? reject(error) : resolve()));
  });
}

/** Opens a gRPC call on a bare connection: an empty request message, then half-close or not. */
function bareCall(session: ClientHttp2Session, path: string, halfClose: boolean) {
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => undefined);
  const emptyMessage = Buffer.from([0, 0, 0, 0, 0]);
  if (halfClose) stream.end(emptyMessage);
  else stream.write(emptyMessage);
  stream.resume();
  return stream;
}

/** A unary call whose response (headers, message, trailers) is data on the connection. */
async function healthCheck(session: ClientHttp2Session): Promise<void> {
  await once(bareCall(session, "/grpc.health.v1.Health/Check", true), "close");
}

/** Resolves with the GOAWAY the connection receives: error code and debug data. */
async function goaway(session: ClientHttp2Session): Promise<{ code: number; data: string }> {
  const [code, , data] = (await once(session, "goaway")) as [number, number, Buffer?];
  return { code, data: data?.toString() ?? "" };
}

describe("connection lifetime", () => {
  const start = serversClosedAfterEach({ storage: "memory" });

  describe("--max-connection-age-ms", () => {
    it("sends GOAWAY, then closes the connection once the grace period is over", async () => {
      const server = await start({ maxConnectionAgeMs: 200, maxConnectionAgeGraceMs: 400 });
      const session = await connectBare(server);
      // A call the server never ends by itself (health Watch is not one of our streams).
      bareCall(session, "/grpc.health.v1.Health/Watch", false);
      const received = await goaway(session);
      const goawayAt = Date.now();
      expect(received).toEqual({ code: http2.NGHTTP2_NO_ERROR, data: "max_age" });
      await closed(session);
      expect(Date.now() - goawayAt, "the call got the grace period").toBeGreaterThanOrEqual(300);
    });

    it("ends Append and Watch on it with UNAVAILABLE after acknowledging what they took, losing nothing", async () => {
      const server = await start({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 20_000 });
      const { client } = server;
      const watcher = watch(client, "aged");
      const stream = client.append();
      const acks: AppendResponse[] = [];
      stream.on("data", (ack: AppendResponse) => acks.push(ack));
      const appendEnded = new Promise<ServiceError | undefined>((resolve) => {
        stream.on("error", resolve);
        stream.on("end", () => resolve(undefined));
      });
      const sent: string[] = [];
      const writing = setInterval(() => {
        const message = JSON.stringify({ n: sent.length });
        sent.push(message);
        stream.write({ sessionId: "aged", messages: [message], sync: false, labels: {} });
      }, 5);
      const appendError = await appendEnded;
      clearInterval(writing);
      // Well before the 20 s grace: the server ended the streams itself, with a status to retry.
      expectStreamError(appendError, status.UNAVAILABLE, /maximum age/);
      expectStreamError(await watcher.ended, status.UNAVAILABLE, /maximum age/);
      expect(acks.length).toBeGreaterThan(10);
      expect(acks.map((ack) => ack.firstSeq)).toEqual(acks.map((_, index) => index));

      // On a new connection: exactly the acknowledged messages are stored, and the client goes on.
      const stored = (await loadAll(client, "aged")).messages;
      expect(stored).toEqual(sent.slice(0, acks.length));
      const resumed = watch(client, "aged", watcher.received.length);
      await append(client, [{ sessionId: "aged", messages: ['{"after":"recycling"}'] }]);
      await expect
        .poll(() => [...watcher.received, ...resumed.received])
        .toEqual([...stored, '{"after":"recycling"}']);
      resumed.call.cancel();
    });
  });

  describe("keepalive", () => {
    it("pings every connection every --keepalive-time-ms", async () => {
      const server = await start({ keepaliveTimeMs: 100 });
      const session = await connectBare(server);
      let pings = 0;
      session.on("ping", () => pings++);
      await expect.poll(() => pings, { timeout: 2000 }).toBeGreaterThanOrEqual(3);
      session.destroy();
    });

    it("refuses a client that pings too often: GOAWAY ENHANCE_YOUR_CALM too_many_pings", async () => {
      const server = await start({ keepaliveMinPingIntervalMs: 1000 });
      const session = await connectBare(server);
      const refused = goaway(session);
      const sessionClosed = closed(session);
      // The first ping is free, the next two are strikes, the third strike is one too many.
      for (let i = 0; i < 4; i++) session.ping(() => undefined);
      expect(await refused).toEqual({
        code: http2.NGHTTP2_ENHANCE_YOUR_CALM,
        data: "too_many_pings",
      });
      await sessionClosed;
    });

    it("accepts pings at the allowed interval, and early pings with data between them", async () => {
      const server = await start({ keepaliveMinPingIntervalMs: 150 });
      const session = await connectBare(server);
      let refused = false;
      session.on("goaway", () => {
        refused = true;
      });
      for (let i = 0; i < 4; i++) {
        await ping(session);
        await sleep(200);
      }
      for (let i = 0; i < 6; i++) {
        await ping(session);
        await healthCheck(session);
      }
      expect(refused).toBe(false);
      await healthCheck(session);
      session.destroy();
    });
  });

  describe("--max-connection-idle-ms", () => {
    it("closes a connection without calls (GOAWAY); the client reconnects for its next call", async () => {
      const server = await start({ maxConnectionIdleMs: 200 });
      const session = await connectBare(server);
      await healthCheck(session);
      expect((await goaway(session)).code).toBe(http2.NGHTTP2_NO_ERROR);
      await closed(session);

      await append(server.client, [{ sessionId: "idle", messages: ["{}"] }]);
      await sleep(400); // the generated client's connection goes idle and is closed
      await append(server.client, [{ sessionId: "idle", messages: ["{}"] }]);
      expect((await loadAll(server.client, "idle")).messages).toHaveLength(2);
    });

    it("keeps a connection whose only call is a Watch waiting for news", async () => {
      const server = await start({ maxConnectionIdleMs: 200 });
      const watcher = watch(server.client, "quiet");
      await sleep(600);
      await append(server.client, [{ sessionId: "quiet", messages: ['{"news":1}'] }]);
      await expect.poll(() => watcher.received).toEqual(['{"news":1}']);
      watcher.call.cancel();
    });
  });
});
