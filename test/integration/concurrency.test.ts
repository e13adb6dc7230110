import { type ServiceError, status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import type { AppendRequest, AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { append, appendStream, loadAll } from "../helpers/test-server.js";
import { describeEachBackend, durableOn, messages } from "./support.js";

const ACTUAL_LENGTH_KEY = "sessionstore-actual-length";

function actualLength(error: ServiceError | undefined): number | undefined {
  const value = error?.metadata?.get(ACTUAL_LENGTH_KEY)[0];
  return value === undefined ? undefined : Number(value);
}

describeEachBackend(
  "expected_seq",
  (start, backend) => {
    it("lets exactly one of two racing writers win each round; the loser learns the length", async () => {
      const server = await start();
      let length = 0;
      for (let round = 0; round < 40; round++) {
        const outcomes = await Promise.all(
          ["a", "b"].map((writer) =>
            appendStream(server.client, [
              {
                sessionId: "race",
                messages: messages(`${writer}${round}`, 1 + (round % 3)),
                expectedSeq: length,
              },
            ]),
          ),
        );
        const winners = outcomes.filter((outcome) => outcome.error === undefined);
        const losers = outcomes.filter((outcome) => outcome.error !== undefined);
        expect(winners).toHaveLength(1);
        expect(losers).toHaveLength(1);
        const won = winners[0]?.acks[0] as AppendResponse;
        expect(won.firstSeq).toBe(length);
        length = won.nextSeq;
        expect(losers[0]?.error?.code).toBe(status.ABORTED);
        expect(actualLength(losers[0]?.error)).toBe(length);
        expect(losers[0]?.error?.details).toContain(`has ${length} messages`);
      }
      expect((await loadAll(server.client, "race")).messages).toHaveLength(length);
    });

    it("acknowledges a resent request with its original seqs and stores nothing twice", async () => {
      const server = await start();
      const first = { sessionId: "retry", messages: messages("r", 3), expectedSeq: 0 };
      const [original] = await append(server.client, [first]);
      await append(server.client, [
        { sessionId: "retry", messages: messages("other", 2), expectedSeq: 3 },
      ]);
      const [again] = await append(server.client, [{ ...first, sync: true }]);
      expect(again).toMatchObject({ firstSeq: original?.firstSeq, nextSeq: original?.nextSeq });
      expect(again?.durableCount).toBeGreaterThanOrEqual(durableOn(backend, 3));
      expect((await loadAll(server.client, "retry")).messages).toEqual([
        ...messages("r", 3),
        ...messages("other", 2),
      ]);
    });

    it("stores only the missing rest of a retry whose start is stored", async () => {
      const server = await start();
      await append(server.client, [
        { sessionId: "partial", messages: messages("p", 2), expectedSeq: 0 },
      ]);
      const [ack] = await append(server.client, [
        { sessionId: "partial", messages: messages("p", 5), expectedSeq: 0 },
      ]);
      expect(ack).toMatchObject({ firstSeq: 0, nextSeq: 5 });
      expect((await loadAll(server.client, "partial")).messages).toEqual(messages("p", 5));
    });

    it("answers ABORTED, storing nothing, when stored messages differ from the resent ones", async () => {
      const server = await start();
      await append(server.client, [{ sessionId: "differs", messages: messages("d", 3) }]);
      const { error } = await appendStream(server.client, [
        {
          sessionId: "differs",
          messages: [...messages("d", 2), '{"tag":"changed"}', '{"more":1}'],
          expectedSeq: 0,
        },
      ]);
      expect(error?.code).toBe(status.ABORTED);
      expect(actualLength(error)).toBe(3);
      expect((await loadAll(server.client, "differs")).messages).toEqual(messages("d", 3));
    });

    it("ends with no gap and no duplicate when a cut stream's unacknowledged requests are resent", async () => {
      const server = await start();
      const requests: AppendRequest[] = Array.from({ length: 60 }, (_, i) => ({
        sessionId: "cut",
        messages: messages("c", 3, i * 3),
        expectedSeq: i * 3,
        sync: i % 7 === 0,
        labels: {},
      }));
      // Send everything, cancel the call after some acks: what was stored past them is unknown.
      const acked = await new Promise<number>((resolve) => {
        const stream = server.client.append();
        let acks = 0;
        stream.on("data", () => {
          acks++;
          if (acks === 17) {
            stream.cancel();
            resolve(acks);
          }
        });
        stream.on("error", () => resolve(acks));
        for (const request of requests) stream.write(request);
      });
      const resent = await append(server.client, requests.slice(acked));
      expect(resent.map((ack) => ack.firstSeq)).toEqual(
        requests.slice(acked).map((request) => request.expectedSeq),
      );
      expect((await loadAll(server.client, "cut")).messages).toEqual(
        requests.flatMap((request) => request.messages),
      );
    });
  },
  { defaults: { flushMessages: 4 } },
);
