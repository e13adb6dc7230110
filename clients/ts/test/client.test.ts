import { readFileSync } from "node:fs";
import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import {
  JwksFile,
  jwtSettings,
  signingKey,
  type TokenClaims,
  token,
} from "../../../test/helpers/tokens.js";
import { isLoopback } from "../src/client.js";
import { type SessionMeta, SessionStoreError, Status } from "../src/index.js";
import { collect, fixturesClosedAfterEach, objects, sleep } from "./support.js";

const fixtures = fixturesClosedAfterEach({ flushMessages: 1000, flushIntervalMs: 60_000 });

/** Text the server must keep byte for byte: a 20-digit integer, escapes, spacing. */
const EXACT = '{"id":12345678901234567890,"text":"caf\\u00e9 \\/ 🦀","price":1.50}';

describe("append", () => {
  it("appends objects and JSON text, resolving to the seqs and the durable count", async () => {
    const { client } = await fixtures.start();
    expect(await client.append("a", objects("a", 3))).toEqual({
      seqs: [0, 1, 2],
      firstSeq: 0,
      nextSeq: 3,
      durableCount: 0,
    });
    expect(await client.append("a", [EXACT, { n: 4 }])).toMatchObject({ seqs: [3, 4], nextSeq: 5 });
    expect(await client.append("a", { single: true })).toMatchObject({ seqs: [5] });
    const raw = await collect(client.load("a", { raw: true }));
    expect(raw.map((entry) => entry.message)).toEqual([
      ...objects("a", 3).map((object) => JSON.stringify(object)),
      EXACT,
      '{"n":4}',
      '{"single":true}',
    ]);
  });

  it("with sync, resolves once the messages are durable", async () => {
    const { client } = await fixtures.start();
    await client.append("s", objects("s", 2));
    expect(await client.append("s", objects("s", 1, 2), { sync: true })).toMatchObject({
      seqs: [2],
      durableCount: 3,
    });
  });

  it("with expectedSeq, appends at that seq or fails with ABORTED and the actual length", async () => {
    const { client } = await fixtures.start();
    await client.append("e", objects("e", 2), { expectedSeq: 0 });
    const error = await client.append("e", { late: true }, { expectedSeq: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(SessionStoreError);
    expect(error).toMatchObject({ code: Status.ABORTED, codeName: "ABORTED", actualLength: 2 });
    expect(error.message).toMatch(/^ABORTED: .*2 messages/);
    // A resend of what is stored is acknowledged as the original was, and stores nothing twice.
    expect(await client.append("e", objects("e", 2), { expectedSeq: 0 })).toMatchObject({
      seqs: [0, 1],
      nextSeq: 2,
    });
    expect((await client.meta("e"))?.messageCount).toBe(2);
  });

  it("refuses a message that is not one JSON object before sending anything", async () => {
    const { client } = await fixtures.start();
    for (const bad of ["[1]", "{", "null", [1, 2], "{} {}"]) {
      const error = await client.append("bad", [{ ok: 1 }, bad as object]).catch((e) => e);
      expect(error, String(bad)).toMatchObject({ code: Status.INVALID_ARGUMENT });
      expect(error.details).toMatch(/message 1 .*one JSON object/);
    }
    await expect(client.append("bad", [])).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
    });
    expect(await client.meta("bad")).toBeUndefined();
  });

  it("passes the server's INVALID_ARGUMENT for a bad session id through", async () => {
    const { client } = await fixtures.start();
    const error = await client.append("../escape", { n: 1 }).catch((e) => e);
    expect(error).toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(error.details).toMatch(/1-200 characters/);
  });

  it("stores raw CR/LF between tokens as spaces, as the server does", async () => {
    const { client } = await fixtures.start();
    await client.append("crlf", '{\r\n  "a": 1\n}');
    const [entry] = await collect(client.load("crlf", { raw: true }));
    expect(entry?.message).toBe('{    "a": 1 }');
  });
});

describe("load", () => {
  it("yields every message with its seq, parsed or raw, across pages", async () => {
    const { client } = await fixtures.start();
    const sent = objects("l", 2500);
    for (let i = 0; i < sent.length; i += 500) await client.append("l", sent.slice(i, i + 500));
    await client.flush("l");
    await client.append("l", EXACT);
    const entries = await collect(client.load("l"));
    expect(entries.map((entry) => entry.seq)).toEqual([...sent.keys(), 2500]);
    expect(entries.slice(0, -1).map((entry) => entry.message)).toEqual(sent);
    // Parsed, the 20-digit integer is rounded; raw, it is exact.
    expect(entries.at(-1)?.message).toEqual({
      id: Number("12345678901234567890"),
      text: "café / 🦀",
      price: 1.5,
    });
    const raw = await collect(client.load("l", { raw: true, fromSeq: 2500 }));
    expect(raw).toEqual([{ seq: 2500, message: EXACT }]);
  });

  it("takes fromSeq, limit and last", async () => {
    const { client } = await fixtures.start();
    await client.append("r", objects("r", 10));
    const seqs = async (options: { fromSeq?: number; limit?: number; last?: boolean }) =>
      (await collect(client.load("r", options))).map((entry) => entry.seq);
    expect(await seqs({ fromSeq: 7 })).toEqual([7, 8, 9]);
    expect(await seqs({ limit: 3 })).toEqual([0, 1, 2]);
    expect(await seqs({ fromSeq: 2, limit: 3 })).toEqual([2, 3, 4]);
    expect(await seqs({ limit: 3, last: true })).toEqual([7, 8, 9]);
    expect(await seqs({ fromSeq: 20 })).toEqual([]);
  });

  it("yields nothing for an unknown session", async () => {
    const { client } = await fixtures.start();
    expect(await collect(client.load("nobody"))).toEqual([]);
  });

  it("uses the client's parser", async () => {
    const { server } = await fixtures.start();
    const client = fixtures.client(server.server.address, {
      parse: (text) => ({ length: text.length }),
    });
    await client.append("p", EXACT);
    expect(await collect(client.load("p"))).toEqual([
      { seq: 0, message: { length: EXACT.length } },
    ]);
  });

  it("stops reading when the loop breaks", async () => {
    const { client } = await fixtures.start();
    await client.append("b", objects("b", 3000));
    const seen: number[] = [];
    for await (const { seq } of client.load("b")) {
      seen.push(seq);
      if (seq === 2) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect((await client.meta("b"))?.messageCount).toBe(3000);
  });
});

describe("watch", () => {
  it("streams from fromSeq, then live appends; ends with NOT_FOUND when the session is deleted", async () => {
    const { client } = await fixtures.start({ flushMessages: 3 });
    await client.append("w", objects("w", 5));
    const received: { seq: number; message: unknown }[] = [];
    const ended = (async () => {
      for await (const entry of client.watch("w", { fromSeq: 2 })) received.push(entry);
    })().catch((error: unknown) => error);
    await expect.poll(() => received.length).toBe(3);
    await client.append("w", objects("w", 4, 5));
    await expect.poll(() => received.length).toBe(7);
    expect(received).toEqual(
      objects("w", 7, 2).map((message, index) => ({ seq: 2 + index, message })),
    );
    await client.delete("w");
    expect(await ended).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("yields raw text and ends when its signal aborts", async () => {
    const { client } = await fixtures.start();
    const controller = new AbortController();
    const received: string[] = [];
    const watching = (async () => {
      for await (const { message } of client.watch("raw", {
        raw: true,
        signal: controller.signal,
      })) {
        received.push(message);
      }
    })();
    await client.append("raw", EXACT);
    await expect.poll(() => received).toEqual([EXACT]);
    controller.abort(new Error("done watching"));
    const error = await watching.catch((e) => e);
    expect(error).toMatchObject({ code: Status.CANCELLED });
    expect(error.cause).toEqual(new Error("done watching"));
  });

  it("ends with DEADLINE_EXCEEDED when given timeoutMs", async () => {
    const { client } = await fixtures.start();
    await expect(collect(client.watch("quiet", { timeoutMs: 200 }))).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
  });
});

describe("list, meta, delete, flush", () => {
  it("lists every session by id, paging inside, filtered by prefix", async () => {
    const { client } = await fixtures.start();
    const ids = Array.from({ length: 25 }, (_, i) => `agent-${String(i).padStart(2, "0")}`);
    for (const id of [...ids, "other"]) await client.append(id, { id });
    const listed = await collect(client.list({ prefix: "agent-", pageSize: 7 }));
    expect(listed.map((meta) => meta.sessionId)).toEqual(ids);
    expect((await collect(client.list())).length).toBe(26);
    expect(await collect(client.list({ prefix: "none" }))).toEqual([]);
  });

  it("reads a session's meta; undefined for an unknown one", async () => {
    const { client } = await fixtures.start();
    const before = Date.now();
    await client.append("m", objects("m", 3));
    const meta = (await client.meta("m")) as SessionMeta;
    expect(meta).toMatchObject({ sessionId: "m", messageCount: 3, durableCount: 0 });
    expect(meta.createdAtMs).toBeGreaterThanOrEqual(before - 1000);
    expect(await client.meta("unknown")).toBeUndefined();
  });

  it("flushes one session or all, and deletes", async () => {
    const { client } = await fixtures.start();
    await client.append("f1", objects("f", 3));
    await client.append("f2", objects("f", 2));
    expect(await client.flush("f1")).toBe(3);
    expect((await client.meta("f1"))?.durableCount).toBe(3);
    expect(await client.flushAll()).toEqual({ flushed: 2, failures: [] });
    // An empty id would flush every session: that is flushAll, asked for by name.
    await expect(client.flush("")).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(await client.delete("f1")).toBe(true);
    expect(await client.delete("f1")).toBe(false);
    expect(await client.meta("f1")).toBeUndefined();
    expect(await client.append("f1", { again: true })).toMatchObject({ seqs: [0] });
  });
});

describe("every call", () => {
  it("sends the client's and the call's metadata, and x-session-id when about one session", async () => {
    const { server } = await fixtures.start();
    const sent: { method: string; metadata: Record<string, unknown> }[] = [];
    const recordMetadata: Interceptor = (options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          sent.push({ method: options.method_definition.path, metadata: metadata.getMap() });
          next(metadata, listener);
        },
      });
    let token = 0;
    const client = fixtures.client(server.server.address, {
      metadata: async () => ({ authorization: `Bearer ${++token}` }),
      grpcOptions: { interceptors: [recordMetadata] },
    });
    await client.append("x", { n: 1 }, { metadata: { "x-trace": "t1" } });
    await collect(client.load("x"));
    await client.meta("x");
    await client.flush("x");
    await collect(client.list());
    const appender = client.appender("x");
    await appender.write({ n: 2 });
    await appender.close();
    await client.delete("x");
    const name = (path: string) => path.split("/").at(-1);
    expect(sent.map((call) => [name(call.method), call.metadata])).toEqual([
      ["Append", { authorization: "Bearer 1", "x-trace": "t1", "x-session-id": "x" }],
      ["Load", { authorization: "Bearer 2", "x-session-id": "x" }],
      ["LoadMeta", { authorization: "Bearer 3", "x-session-id": "x" }],
      ["Flush", { authorization: "Bearer 4", "x-session-id": "x" }],
      ["List", { authorization: "Bearer 5" }],
      ["LoadMeta", { authorization: "Bearer 6", "x-session-id": "x" }],
      ["Append", { authorization: "Bearer 7", "x-session-id": "x" }],
      ["Delete", { authorization: "Bearer 8", "x-session-id": "x" }],
    ]);
  });

  it("fails with CANCELLED when its signal aborts, before or during the call", async () => {
    const { client } = await fixtures.start();
    const aborted = AbortSignal.abort();
    await expect(client.meta("s", { signal: aborted })).rejects.toMatchObject({
      code: Status.CANCELLED,
    });
    await expect(client.append("s", { n: 1 }, { signal: aborted })).rejects.toMatchObject({
      code: Status.CANCELLED,
    });
    await expect(collect(client.load("s", { signal: aborted }))).rejects.toMatchObject({
      code: Status.CANCELLED,
    });
    await expect(collect(client.list({ signal: aborted }))).rejects.toMatchObject({
      code: Status.CANCELLED,
    });
    const controller = new AbortController();
    const watching = collect(client.watch("s", { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    await expect(watching).rejects.toMatchObject({ code: Status.CANCELLED });
    expect(await client.meta("s")).toBeUndefined();
  });

  it("fails with DEADLINE_EXCEEDED past its timeout, and UNAVAILABLE with no server", async () => {
    const { client } = await fixtures.start({}, { timeoutMs: 1 });
    await expect(client.append("t", objects("t", 2000))).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    const nowhere = fixtures.client("127.0.0.1:1", { retry: { maxAttempts: 2 } });
    const error = await nowhere.meta("t").catch((e) => e);
    expect(error).toBeInstanceOf(SessionStoreError);
    expect(error.code).toBe(Status.UNAVAILABLE);
  });
});

describe("connections", () => {
  const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));

  it("speaks TLS, trusting the given CA, and reaches a plaintext server with insecure", async () => {
    const { server } = await fixtures.start();
    const cert = fixture("localhost.crt");
    const tlsProxy = await fixtures.proxy(server.server.address, {
      key: fixture("localhost.key"),
      cert,
    });
    const port = tlsProxy.address.split(":")[1];
    const overTls = fixtures.client(`localhost:${port}`, { credentials: { rootCerts: cert } });
    expect(await overTls.append("tls", { secure: true })).toMatchObject({ seqs: [0] });
    expect(await collect(overTls.load("tls"))).toEqual([{ seq: 0, message: { secure: true } }]);
    // Plaintext to the TLS port, and TLS without trusting the test CA, both fail to connect.
    const plain = fixtures.client(`localhost:${port}`, { retry: { maxAttempts: 1 } });
    await expect(plain.meta("tls")).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    const untrusted = fixtures.client(`localhost:${port}`, {
      credentials: "tls",
      retry: { maxAttempts: 1 },
    });
    await expect(untrusted.meta("tls")).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });

  it("over TLS, asks a token function before every call and every reconnect of a stream", async () => {
    const key = await signingKey();
    const server = await fixtures.server(jwtSettings(await JwksFile.create([key])));
    const cert = fixture("localhost.crt");
    const tlsProxy = await fixtures.proxy(server.server.address, {
      key: fixture("localhost.key"),
      cert,
    });
    let claims: TokenClaims = { tenant: "refreshed" };
    let asked = 0;
    const client = fixtures.client(`localhost:${tlsProxy.address.split(":")[1]}`, {
      credentials: { rootCerts: cert },
      token: () => {
        asked++;
        return token(key, claims);
      },
      retry: { initialDelayMs: 10, maxDelayMs: 100 },
    });
    await client.meta("s");
    await client.meta("s");
    expect(asked).toBe(2);
    const appender = client.appender("s");
    await appender.write({ n: 0 });
    // The connection drops; the stream reconnects with the token the function returns then.
    claims = { ...claims, exp: Math.floor(Date.now() / 1000) - 120 };
    expect(tlsProxy.dropConnections()).toBeGreaterThan(0);
    const refused = { code: Status.UNAUTHENTICATED, message: expect.stringMatching(/expired/) };
    await expect(appender.write({ n: 1 })).rejects.toMatchObject(refused);
    await expect(appender.close()).rejects.toMatchObject(refused);
  });

  it("fails a call with UNAUTHENTICATED when the token function throws, keeping what it threw", async () => {
    const server = await fixtures.server();
    const failure = new Error("the identity provider is down");
    const client = fixtures.client(server.server.address, {
      token: () => {
        throw failure;
      },
    });
    const error = await client.meta("s").catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: Status.UNAUTHENTICATED, cause: failure });
    expect(String(error)).toMatch(/the token function failed: the identity provider is down/);
  });

  it("defaults to plaintext for loopback addresses only", () => {
    for (const address of ["localhost:1", "127.0.0.1:50051", "[::1]:80", "unix:/tmp/s.sock"]) {
      expect(isLoopback(address), address).toBe(true);
    }
    for (const address of ["sessions.example.com:443", "10.0.0.1:50051", "dns:///store:443"]) {
      expect(isLoopback(address), address).toBe(false);
    }
  });

  it("watch and load go on from the next seq after the server restarts", async () => {
    const first = await fixtures.server({ flushMessages: 5 });
    const client = fixtures.client(first.server.address, {
      retry: { initialDelayMs: 20, maxDelayMs: 500 },
    });
    await client.append("resume", objects("a", 12));
    const received: number[] = [];
    const watching = (async () => {
      for await (const { seq } of client.watch("resume")) {
        received.push(seq);
        if (seq === 19) return;
      }
    })();
    await expect.poll(() => received.length).toBe(12);
    await first.stop();
    const second = await fixtures.server({
      dataDir: first.dataDir,
      listen: first.server.address,
      flushMessages: 5,
    });
    await client.append("resume", objects("b", 8), { expectedSeq: 12 });
    await watching;
    expect(received).toEqual([...Array(20).keys()]);
    expect((await collect(client.load("resume", { fromSeq: 10 }))).length).toBe(10);
    await second.stop();
  });

  it("watches and appends across connections recycled at --max-connection-age-ms, losing nothing", async () => {
    // A new connection every ~300 ms; what still runs on the old one 200 ms later is cut off.
    const { client } = await fixtures.start({
      maxConnectionAgeMs: 300,
      maxConnectionAgeGraceMs: 200,
    });
    const count = 300;
    const watched: unknown[] = [];
    const watching = (async () => {
      for await (const { seq, message } of client.watch("recycled")) {
        expect(seq).toBe(watched.length);
        watched.push(message);
        if (watched.length === count) return;
      }
    })();
    const appender = client.appender("recycled");
    for (const message of objects("recycled", count)) {
      await appender.ready();
      void appender.write(message);
      await sleep(5); // 1.5 s of appends: several connections
    }
    await appender.close();
    await watching;
    expect(await collect(client.load("recycled"))).toEqual(
      objects("recycled", count).map((message, seq) => ({ seq, message })),
    );
    expect(watched).toEqual(objects("recycled", count));
  });
});
