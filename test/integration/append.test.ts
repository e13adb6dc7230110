import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import type { AppendRequest, AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { append, appendStream, loadAll } from "../helpers/test-server.js";
import {
  describeEachBackend,
  expectStatus,
  expectStreamError,
  flush,
  loadMeta,
  messages,
} from "./support.js";

/** Servers whose buffers are written only when a test asks (Flush, sync) or at shutdown. */
describeEachBackend(
  "Append",
  (start, backend) => {
    it("feeds several sessions from one stream, one ack per request in request order", async () => {
      const { client } = await start();
      const requests: Partial<AppendRequest>[] = [
        { sessionId: "alpha", messages: messages("a", 2) },
        { sessionId: "beta", messages: messages("b", 1) },
        { sessionId: "alpha", messages: messages("a", 3, 2) },
        { sessionId: "alpha", messages: [] },
        { sessionId: "gamma", messages: [] },
        { sessionId: "beta", messages: messages("b", 2, 1) },
      ];

      const acks = await append(client, requests);

      expect(acks).toEqual<AppendResponse[]>([
        { sessionId: "alpha", firstSeq: 0, nextSeq: 2, durableCount: 0 },
        { sessionId: "beta", firstSeq: 0, nextSeq: 1, durableCount: 0 },
        { sessionId: "alpha", firstSeq: 2, nextSeq: 5, durableCount: 0 },
        { sessionId: "alpha", firstSeq: 5, nextSeq: 5, durableCount: 0 },
        { sessionId: "gamma", firstSeq: 0, nextSeq: 0, durableCount: 0 },
        { sessionId: "beta", firstSeq: 1, nextSeq: 3, durableCount: 0 },
      ]);
      expect((await loadAll(client, "alpha")).messages).toEqual(messages("a", 5));
      expect((await loadAll(client, "beta")).messages).toEqual(messages("b", 3));
      // A request without messages does not create a session.
      await expectStatus(loadMeta(client, "gamma"), status.NOT_FOUND);
    });

    it("continues a session's seqs across streams", async () => {
      const { client } = await start();
      await append(client, [{ sessionId: "s", messages: messages("x", 3) }]);
      const [ack] = await append(client, [{ sessionId: "s", messages: messages("x", 2, 3) }]);
      expect(ack).toMatchObject({ firstSeq: 3, nextSeq: 5 });
      expect((await loadAll(client, "s")).messages).toEqual(messages("x", 5));
    });

    it("stores messages byte for byte", async () => {
      const { client } = await start();
      const exact = [
        '{"id":12345678901234567890,"negative":-98765432109876543210}',
        String.raw`{"text":"caf\u00e9 \u00E9","url":"http:\/\/example.com\/a\/b","quote":"\"","tab":"\t"}`,
        '{"emoji":"🦀 👩‍💻 🇯🇵","price":1.50,"exponent":1E+2,"zero":-0.0}',
        '{ "spaced" :\t[ 1 , 2 ] , "nested" : { } }',
        '{"duplicate":1,"duplicate":2}',
        '{"accents":"é","cjk":"漢字"}',
      ];

      await append(client, [{ sessionId: "bytes", messages: exact }]);

      expect((await loadAll(client, "bytes")).messages).toEqual(exact);
      await flush(client, "bytes");
      expect((await loadAll(client, "bytes")).messages).toEqual(exact);
    });

    it("turns raw CR and LF between tokens into spaces and changes nothing else", async () => {
      const { client } = await start();
      const pretty =
        '{\r\n  "a": 1,\n  "text": "line\\nbreak\\r\\n",\r  "list": [\n    1.50\n  ]\n}';
      const expected = '{    "a": 1,   "text": "line\\nbreak\\r\\n",   "list": [     1.50   ] }';

      await append(client, [{ sessionId: "pretty", messages: [pretty, '{"after":true}'] }]);

      expect((await loadAll(client, "pretty")).messages).toEqual([expected, '{"after":true}']);
      await flush(client, "pretty");
      expect((await loadAll(client, "pretty")).messages).toEqual([expected, '{"after":true}']);
    });

    it.each([
      ["invalid JSON", '{"a":', /not valid JSON/],
      ["an array", "[1,2]", /array, not an object/],
      ["a string", '"text"', /string, not an object/],
      ["a number", "42", /number, not an object/],
      ["null", "null", /null, not an object/],
      ["empty text", "", /not valid JSON/],
      ["two objects", '{"a":1} {"b":2}', /not valid JSON/],
    ])(
      "rejects %s with INVALID_ARGUMENT, keeping the stream's earlier requests",
      async (_, bad, why) => {
        const { client } = await start();
        const { acks, error } = await appendStream(client, [
          { sessionId: "other", messages: messages("o", 1) },
          { sessionId: "s", messages: messages("s", 2) },
          { sessionId: "s", messages: ['{"same":"request"}', bad] },
          { sessionId: "s", messages: messages("late", 1) },
        ]);

        expectStreamError(error, status.INVALID_ARGUMENT, why);
        expect(error?.details).toMatch(/message 1 /);
        expect(error?.details).toMatch(/must be one JSON object/);
        // The requests before the bad one were acknowledged before the error.
        expect(acks).toEqual([
          { sessionId: "other", firstSeq: 0, nextSeq: 1, durableCount: 0 },
          { sessionId: "s", firstSeq: 0, nextSeq: 2, durableCount: 0 },
        ]);
        // Nothing of the bad request is stored (not even its valid message), nor anything after it.
        expect((await loadAll(client, "s")).messages).toEqual(messages("s", 2));
        expect((await loadAll(client, "other")).messages).toEqual(messages("o", 1));
        expect(await loadMeta(client, "s")).toMatchObject({ messageCount: 2 });
      },
    );

    it("rejects a bad first request without creating the session", async () => {
      const { client } = await start();
      const { acks, error } = await appendStream(client, [
        { sessionId: "fresh", messages: ["[]"] },
      ]);
      expectStreamError(error, status.INVALID_ARGUMENT, /message 0 .*not an object/);
      expect(acks).toEqual([]);
      await expectStatus(loadMeta(client, "fresh"), status.NOT_FOUND);
    });

    it("answers an expected_seq mismatch with ABORTED, naming the actual length, and stores nothing", async () => {
      const { client } = await start();
      await append(client, [{ sessionId: "s", messages: messages("s", 2) }]);

      const { acks, error } = await appendStream(client, [
        { sessionId: "s", messages: messages("s", 1, 2), expectedSeq: 2 },
        { sessionId: "s", messages: messages("wrong", 1), expectedSeq: 2 },
        { sessionId: "s", messages: messages("late", 1) },
      ]);

      expect(acks).toEqual([{ sessionId: "s", firstSeq: 2, nextSeq: 3, durableCount: 0 }]);
      expectStreamError(error, status.ABORTED, /expected_seq is 2 but session s has 3 messages/);
      expect((await loadAll(client, "s")).messages).toEqual(messages("s", 3));
    });

    it("checks expected_seq on a session that does not exist yet", async () => {
      const { client } = await start();
      const { error } = await appendStream(client, [
        { sessionId: "new", messages: messages("n", 1), expectedSeq: 1 },
      ]);
      expectStreamError(error, status.ABORTED, /has 0 messages/);
      await expectStatus(loadMeta(client, "new"), status.NOT_FOUND);

      const acks = await append(client, [
        { sessionId: "new", messages: messages("n", 1), expectedSeq: 0 },
      ]);
      expect(acks).toEqual([{ sessionId: "new", firstSeq: 0, nextSeq: 1, durableCount: 0 }]);
    });

    // The memory backend keeps nothing durable: its sync acks cannot count anything so.
    it.skipIf(backend === "memory")(
      "with sync=true acknowledges only once the request is durable",
      async () => {
        const { client } = await start();
        const acks = await append(client, [
          { sessionId: "s", messages: messages("s", 2) },
          { sessionId: "s", messages: messages("s", 3, 2), sync: true },
          { sessionId: "s", messages: messages("s", 1, 5) },
        ]);

        // The buffered acks say nothing is durable yet; the sync one covers itself and what came before.
        expect(acks[0]).toMatchObject({ firstSeq: 0, nextSeq: 2, durableCount: 0 });
        expect(acks[1]).toMatchObject({ firstSeq: 2, nextSeq: 5 });
        expect(acks[1]?.durableCount).toBeGreaterThanOrEqual(5);
        expect(acks[2]).toMatchObject({ firstSeq: 5, nextSeq: 6 });
        expect((await loadMeta(client, "s")).durableCount).toBeGreaterThanOrEqual(5);
      },
    );

    it("orders two concurrent streams on one session into one gap-free log", async () => {
      const { client } = await start();
      const streamRequests = (tag: string): Partial<AppendRequest>[] => {
        const requests: Partial<AppendRequest>[] = [];
        for (let index = 0, sent = 0; index < 150; index++) {
          const count = (index % 3) + 1;
          requests.push({ sessionId: "shared", messages: messages(tag, count, sent) });
          sent += count;
        }
        return requests;
      };
      const requestsA = streamRequests("A");
      const requestsB = streamRequests("B");

      const [acksA, acksB] = await Promise.all([
        append(client, requestsA),
        append(client, requestsB),
      ]);

      const { messages: log } = await loadAll(client, "shared");
      const sentCount = (requests: Partial<AppendRequest>[]) =>
        requests.reduce((sum, request) => sum + (request.messages?.length ?? 0), 0);
      expect(log).toHaveLength(sentCount(requestsA) + sentCount(requestsB));

      const ranges: [number, number][] = [];
      for (const [requests, acks] of [
        [requestsA, acksA],
        [requestsB, acksB],
      ] as const) {
        expect(acks).toHaveLength(requests.length);
        let previousNext = -1;
        acks.forEach((ack, index) => {
          const sent = requests[index]?.messages ?? [];
          expect(ack.sessionId).toBe("shared");
          expect(ack.nextSeq - ack.firstSeq).toBe(sent.length);
          // A stream's requests are ordered: each lands after the previous one.
          expect(ack.firstSeq).toBeGreaterThanOrEqual(previousNext);
          previousNext = ack.nextSeq;
          // The ack's range is exactly where Load finds the request's messages.
          expect(log.slice(ack.firstSeq, ack.nextSeq)).toEqual(sent);
          ranges.push([ack.firstSeq, ack.nextSeq]);
        });
      }
      // The ranges of both streams tile the log: disjoint, no gaps.
      ranges.sort((a, b) => a[0] - b[0]);
      let expectedStart = 0;
      for (const [first, next] of ranges) {
        expect(first).toBe(expectedStart);
        expectedStart = next;
      }
      expect(expectedStart).toBe(log.length);
      // Each stream's own messages keep their order.
      for (const tag of ["A", "B"]) {
        const own = log.filter((text) => (JSON.parse(text) as { tag: string }).tag === tag);
        expect(own).toEqual(messages(tag, own.length));
      }
    });
  },
  { defaults: { flushMessages: 10_000, flushIntervalMs: 60_000 } },
);
