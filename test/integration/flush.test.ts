import { describe, expect, it } from "vitest";
import { append } from "../helpers/test-server.js";
import {
  flush,
  loadMeta,
  messages,
  pollUntil,
  readSessionFile,
  serversClosedAfterEach,
  sleep,
  writtenLines,
} from "./support.js";

const start = serversClosedAfterEach();

describe("flushing (file backend)", () => {
  it("writes what it was sent to the file byte for byte (raw CR/LF as spaces), a sync request before its ack", async () => {
    const { client, dataDir } = await start({ flushMessages: 10_000, flushIntervalMs: 60_000 });
    const exact = [
      '{"id":12345678901234567890,"negative":-98765432109876543210}',
      String.raw`{"text":"caf\u00e9 \u00E9","url":"http:\/\/example.com\/a\/b","quote":"\"","tab":"\t"}`,
      '{"emoji":"🦀 👩‍💻 🇯🇵","price":1.50,"exponent":1E+2,"zero":-0.0}',
      '{\r\n  "a": 1,\n  "list": [\n    1.50\n  ]\n}',
    ];
    const stored = [...exact.slice(0, 3), '{    "a": 1,   "list": [     1.50   ] }'];
    const acks = await append(client, [
      { sessionId: "bytes", messages: exact.slice(0, 2) },
      { sessionId: "bytes", messages: exact.slice(2), sync: true },
    ]);
    expect(acks[1]?.durableCount).toBe(4);
    // Acknowledged durable: in the file already, before any Flush.
    expect(await readSessionFile(dataDir, "bytes")).toEqual({ headerCount: 4, lines: stored });
  });

  it("writes a session once it buffers flushMessages messages, and not before", async () => {
    const { client, dataDir } = await start({ flushMessages: 5, flushIntervalMs: 60_000 });

    await append(client, [
      { sessionId: "full", messages: messages("f", 5) },
      { sessionId: "short", messages: messages("s", 4) },
    ]);

    const written = await pollUntil(
      async () => (await readSessionFile(dataDir, "full"))?.headerCount === 5,
      2000,
    );
    expect(written, "5 buffered messages should reach the file").toBe(true);
    expect((await readSessionFile(dataDir, "full"))?.lines).toEqual(messages("f", 5));
    // Meanwhile the session with 4 stays in memory only.
    await sleep(100);
    const short = await readSessionFile(dataDir, "short");
    expect(short === undefined || short.headerCount < 4).toBe(true);
    expect(await loadMeta(client, "short")).toMatchObject({ messageCount: 4, durableCount: 0 });

    // The fifth message completes the batch.
    await append(client, [{ sessionId: "short", messages: messages("s", 1, 4) }]);
    const completed = await pollUntil(
      async () => (await readSessionFile(dataDir, "short"))?.headerCount === 5,
      2000,
    );
    expect(completed).toBe(true);
    expect((await readSessionFile(dataDir, "short"))?.lines).toEqual(messages("s", 5));
  });

  it("writes buffered messages within flushIntervalMs", async () => {
    const { client, dataDir } = await start({ flushMessages: 10_000, flushIntervalMs: 200 });
    const started = Date.now();

    await append(client, [{ sessionId: "timed", messages: messages("t", 3) }]);

    const written = await pollUntil(
      async () => (await readSessionFile(dataDir, "timed"))?.headerCount === 3,
      3000,
    );
    expect(written, "the interval flush should write the 3 messages").toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
    expect((await readSessionFile(dataDir, "timed"))?.lines).toEqual(messages("t", 3));
    // The interval flush also makes them durable.
    expect(
      await pollUntil(async () => (await loadMeta(client, "timed")).durableCount === 3, 2000),
    ).toBe(true);
  });

  it("Flush writes one session, or every session with an empty id, and counts what it wrote", async () => {
    const { client, dataDir } = await start({ flushMessages: 10_000, flushIntervalMs: 60_000 });
    await append(client, [
      { sessionId: "one", messages: messages("1", 3) },
      { sessionId: "two", messages: messages("2", 2) },
      { sessionId: "three", messages: messages("3", 4) },
    ]);
    expect(await writtenLines(dataDir, "one")).toEqual([]);
    expect(await loadMeta(client, "one")).toMatchObject({ messageCount: 3, durableCount: 0 });

    expect(await flush(client, "one")).toEqual({ flushed: 3, failures: [] });
    expect(await readSessionFile(dataDir, "one")).toEqual({
      headerCount: 3,
      lines: messages("1", 3),
    });
    expect(await writtenLines(dataDir, "two")).toEqual([]);
    expect(await loadMeta(client, "one")).toMatchObject({ messageCount: 3, durableCount: 3 });

    expect(await flush(client, "")).toEqual({ flushed: 6, failures: [] });
    expect(await readSessionFile(dataDir, "two")).toEqual({
      headerCount: 2,
      lines: messages("2", 2),
    });
    expect(await readSessionFile(dataDir, "three")).toEqual({
      headerCount: 4,
      lines: messages("3", 4),
    });
    for (const sessionId of ["one", "two", "three"]) {
      const meta = await loadMeta(client, sessionId);
      expect(meta.durableCount).toBe(meta.messageCount);
    }

    // Nothing left to write; a later append is written by the next Flush, after the earlier lines.
    expect(await flush(client, "")).toEqual({ flushed: 0, failures: [] });
    await append(client, [{ sessionId: "two", messages: messages("2", 1, 2) }]);
    expect(await flush(client, "two")).toEqual({ flushed: 1, failures: [] });
    expect(await readSessionFile(dataDir, "two")).toEqual({
      headerCount: 3,
      lines: messages("2", 3),
    });
    expect(await loadMeta(client, "two")).toMatchObject({ messageCount: 3, durableCount: 3 });
  });

  it("Flush of an unknown session writes nothing", async () => {
    const { client, dataDir } = await start({});
    expect(await flush(client, "nobody")).toEqual({ flushed: 0, failures: [] });
    expect(await writtenLines(dataDir, "nobody")).toEqual([]);
  });
});
