import {
  type Client,
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { AppendResponse, LoadMetaResponse } from "../../gen/sessionstore/v1/session_store.js";
import type { TestServer } from "../helpers/test-server.js";
import { append, appendStream, loadAll } from "../helpers/test-server.js";
import { describeEachBackend, expectStreamError, loadMeta } from "./support.js";

/** Protobuf wire bytes for a length-delimited field. */
function field(number: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(number << 3) | 2, bytes.length]), bytes]);
}

/** A client that sends raw bytes, to send what the generated client would refuse to encode. */
const RawClient = makeGenericClientConstructor(
  {
    append: {
      path: "/sessionstore.v1.SessionStore/Append",
      requestStream: true,
      responseStream: true,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: (bytes: Buffer) => AppendResponse.decode(bytes),
    },
    loadMeta: {
      path: "/sessionstore.v1.SessionStore/LoadMeta",
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: (bytes: Buffer) => LoadMetaResponse.decode(bytes),
    },
  },
  "RawSessionStore",
);
type RawClient = Client & {
  append(): ClientDuplexStream<Buffer, AppendResponse>;
  loadMeta(request: Buffer, callback: (error: ServiceError | null) => void): void;
};

function rawAppend(server: TestServer, request: Buffer): Promise<ServiceError | undefined> {
  const client = new RawClient(
    server.server.address,
    credentials.createInsecure(),
  ) as unknown as RawClient;
  return new Promise((resolve) => {
    const stream = client.append();
    stream.on("data", () => undefined);
    stream.on("error", (error: ServiceError) => resolve(error));
    stream.on("end", () => resolve(undefined));
    stream.write(request);
    stream.end();
  }).finally(() => client.close()) as Promise<ServiceError | undefined>;
}

describeEachBackend(
  "hostile input",
  (start) => {
    /** The server still serves a well-behaved client after whatever a test threw at it. */
    async function expectStillServing(server: TestServer): Promise<void> {
      const sessionId = `healthy-${Math.random().toString(36).slice(2)}`;
      await append(server.client, [{ sessionId, messages: ['{"ok":true}'] }]);
      expect((await loadAll(server.client, sessionId)).messages).toEqual(['{"ok":true}']);
    }

    it.each([
      [
        "invalid UTF-8 in a message",
        field(1, Buffer.from("s")),
        field(2, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])),
      ],
      [
        "invalid UTF-8 in the session id",
        field(1, Buffer.from([0x61, 0xc3])),
        field(2, Buffer.from("{}")),
      ],
      [
        "a truncated UTF-8 sequence",
        field(1, Buffer.from("s")),
        field(2, Buffer.from([0x7b, 0x22, 0xe2, 0x82, 0x22, 0x7d])),
      ],
    ])("rejects %s with INVALID_ARGUMENT, storing nothing", async (_name, id, message) => {
      const server = await start();
      const error = await rawAppend(server, Buffer.concat([id, message]));
      expectStreamError(error, status.INVALID_ARGUMENT, /not valid UTF-8/);
      expect((await loadAll(server.client, "s")).messages).toEqual([]);
      await expectStillServing(server);
    });

    it("rejects invalid UTF-8 in a unary request with INVALID_ARGUMENT", async () => {
      const server = await start();
      const client = new RawClient(
        server.server.address,
        credentials.createInsecure(),
      ) as unknown as RawClient;
      const error = await new Promise<ServiceError | null>((resolve) =>
        client.loadMeta(field(1, Buffer.from([0x61, 0xff])), resolve),
      );
      client.close();
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      await expectStillServing(server);
    });

    it("rejects 10,000-deep nesting with INVALID_ARGUMENT naming motosan's limit", async () => {
      const server = await start({ maxMessageBytes: 1 << 20 });
      const deep = `{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
      const { error } = await appendStream(server.client, [
        { sessionId: "deep", messages: [deep] },
      ]);
      expectStreamError(error, status.INVALID_ARGUMENT, /deeper than 127 levels/);
      const justDeeper = `{"a":${"[".repeat(127)}${"]".repeat(127)}}`;
      const tooDeep = await appendStream(server.client, [
        { sessionId: "deep", messages: [justDeeper] },
      ]);
      expectStreamError(tooDeep.error, status.INVALID_ARGUMENT, /deeper than 127 levels/);
      const atLimit = `{"a":${"[".repeat(126)}${"]".repeat(126)}}`;
      await append(server.client, [{ sessionId: "deep", messages: [atLimit] }]);
      expect((await loadAll(server.client, "deep")).messages).toEqual([atLimit]);
    });

    it.each([
      ["a lone surrogate escape", String.raw`{"s":"\ud800"}`, /lone UTF-16 surrogate escape/],
      [
        "a number past f64",
        '{"n":1e999}',
        /does not fit a 64-bit float \(at byte 5, 5 characters long\)/,
      ],
    ])(
      "rejects %s, which motosan's reader refuses, with INVALID_ARGUMENT, storing nothing of the request",
      async (_name, unreadable, reason) => {
        const server = await start();
        const { error, acks } = await appendStream(server.client, [
          { sessionId: "serde", messages: ['{"fine":1}'] },
          { sessionId: "serde", messages: ['{"fine":2}', unreadable] },
        ]);
        expect(acks).toHaveLength(1);
        expectStreamError(error, status.INVALID_ARGUMENT, reason);
        expect((await loadAll(server.client, "serde")).messages).toEqual(['{"fine":1}']);
        await expectStillServing(server);
      },
    );

    it("rejects a message over the size limit with RESOURCE_EXHAUSTED naming the limit", async () => {
      const server = await start();
      const { error, acks } = await appendStream(server.client, [
        { sessionId: "big", messages: ['{"small":1}'] },
        { sessionId: "big", messages: [`{"pad":"${"x".repeat(5000)}"}`] },
      ]);
      expect(acks).toHaveLength(1);
      expectStreamError(
        error,
        status.RESOURCE_EXHAUSTED,
        /over the limit of 4096 \(--max-message-bytes\)/,
      );
      expect((await loadAll(server.client, "big")).messages).toEqual(['{"small":1}']);
      await expectStillServing(server);
    });

    it("rejects too many messages in one request with RESOURCE_EXHAUSTED naming the limit", async () => {
      const server = await start();
      const messages = Array.from({ length: 51 }, (_, n) => `{"n":${n}}`);
      const { error } = await appendStream(server.client, [{ sessionId: "many", messages }]);
      expectStreamError(error, status.RESOURCE_EXHAUSTED, /--max-request-messages/);
      expect((await loadAll(server.client, "many")).messages).toEqual([]);
    });

    it("rejects a request over the wire limit with RESOURCE_EXHAUSTED", async () => {
      const server = await start();
      const messages = Array.from({ length: 40 }, () => `{"pad":"${"y".repeat(3000)}"}`); // ~120 KB
      const { error } = await appendStream(server.client, [{ sessionId: "wire", messages }]);
      expectStreamError(error, status.RESOURCE_EXHAUSTED);
      await expectStillServing(server);
    });

    it.each([
      ["empty", ""],
      ["huge", "x".repeat(60_000)],
      ["NUL", "a\u0000b"],
    ])("rejects a %s session id with INVALID_ARGUMENT", async (_name, sessionId) => {
      const server = await start();
      const { error } = await appendStream(server.client, [{ sessionId, messages: ['{"a":1}'] }]);
      expectStreamError(error, status.INVALID_ARGUMENT, /session id/);
      await expectStillServing(server);
    });

    it("rejects an empty request (no session id, no messages) with INVALID_ARGUMENT", async () => {
      const server = await start();
      const { error } = await appendStream(server.client, [{}]);
      expectStreamError(error, status.INVALID_ARGUMENT, /session id/);
      await expectStillServing(server);
    });

    it("refuses Append streams past --max-append-streams with RESOURCE_EXHAUSTED, and serves again once they close", async () => {
      const server = await start({ maxAppendStreams: 2 });
      const open = [server.client.append(), server.client.append()];
      for (const stream of open) {
        stream.on("data", () => undefined);
        stream.on("error", () => undefined);
        stream.write({ sessionId: "held", messages: ['{"a":1}'], sync: false, labels: {} });
      }
      // Counted with LoadMeta, a unary call: the streams' limit does not apply to it.
      await expect.poll(async () => (await loadMeta(server.client, "held")).messageCount).toBe(2);
      const { error } = await appendStream(server.client, [
        { sessionId: "third", messages: ['{"a":1}'] },
      ]);
      expectStreamError(error, status.RESOURCE_EXHAUSTED, /--max-append-streams/);
      for (const stream of open) stream.end();
      await expect
        .poll(
          async () =>
            (await appendStream(server.client, [{ sessionId: "later", messages: ["{}"] }])).error,
        )
        .toBeUndefined();
    });
  },
  {
    defaults: {
      maxMessageBytes: 4096,
      maxRequestMessages: 50,
      maxRequestBytes: 64 * 1024,
    },
  },
);
