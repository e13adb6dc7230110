import { once } from "node:events";
import { type ClientHttp2Session, connect, constants as http2 } from "node:http2";
import { describe, expect, it } from "vitest";
import type { TestServer } from "../helpers/test-server.js";
import { append, loadAll } from "../helpers/test-server.js";
import { serversClosedAfterEach, sleep, watch } from "./support.js";

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
