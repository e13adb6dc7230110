import { InterceptingCall, type Interceptor, Metadata, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { SessionStoreError, Status, type WatchEvent } from "../src/index.js";
import { collect, fixturesClosedAfterEach, objects, sleep } from "./support.js";

// Labels, fork, rewind, trim, ordered and selected listings, context windows: on the memory
// backend, which implements them all.
const fixtures = fixturesClosedAfterEach({ storage: "memory" });

/** A turn of the OpenAI Chat Completions format whose tool call has its result, then one whose call has none. */
const CHAT = [
  { role: "user", content: "What is the weather in Paris?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: "call_1",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris"}' },
      },
    ],
  },
  { role: "tool", tool_call_id: "call_1", content: '{"celsius":18}' },
  { role: "assistant", content: "18 °C in Paris." },
  { role: "user", content: "And in Rome?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: "call_2",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Rome"}' },
      },
    ],
  },
];

async function failure(promise: Promise<unknown>): Promise<SessionStoreError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  return error as SessionStoreError;
}

describe("labels", () => {
  it("append and the appender label the session they create, and only that one", async () => {
    const { client } = await fixtures.start();
    await client.append("a", { n: 0 }, { labels: { user: "alice" } });
    await client.append("a", { n: 1 }, { labels: { user: "bob" } });
    expect(await client.meta("a")).toMatchObject({ labels: { user: "alice" }, labelsRevision: 1 });
    const appender = client.appender("b", { labels: { user: "carol", team: "x" } });
    for (const message of objects("b", 3)) void appender.write(message);
    await appender.close();
    expect(await client.meta("b")).toMatchObject({
      messageCount: 3,
      labels: { user: "carol", team: "x" },
    });
  });

  it("setLabels sets and removes labels, guarded by the revision it expects", async () => {
    const { client } = await fixtures.start();
    await client.append("s", { n: 0 });
    const set = await client.setLabels("s", { user: "alice", env: "dev" });
    expect(set).toMatchObject({ sessionId: "s", labels: { user: "alice", env: "dev" } });
    const removed = await client.setLabels(
      "s",
      { env: "" },
      { expectedLabelsRevision: set.labelsRevision },
    );
    expect(removed.labels).toEqual({ user: "alice" });
    expect(removed.labelsRevision).toBe(set.labelsRevision + 1);
    const stale = await failure(
      client.setLabels("s", { env: "prod" }, { expectedLabelsRevision: set.labelsRevision }),
    );
    expect(stale).toMatchObject({
      code: Status.ABORTED,
      actualLabelsRevision: removed.labelsRevision,
    });
    expect((await client.meta("s"))?.labels).toEqual({ user: "alice" });
  });

  it("setLabels fails with NOT_FOUND for an unknown session and INVALID_ARGUMENT for a bad key", async () => {
    const { client } = await fixtures.start();
    expect(await failure(client.setLabels("nobody", { a: "b" }))).toMatchObject({
      code: Status.NOT_FOUND,
    });
    await client.append("s", { n: 0 });
    const bad = await failure(client.setLabels("s", { "not a key": "x" }));
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
  });
});

describe("list", () => {
  it("selects by labels and orders most recently appended first, across pages", async () => {
    const { client } = await fixtures.start();
    for (const [id, user] of [
      ["s1", "alice"],
      ["s2", "bob"],
      ["s3", "alice"],
      ["s4", "alice"],
    ] as const) {
      await client.append(id, { id }, { labels: { user } });
      await sleep(5); // each appended to at a later millisecond than the one before
    }
    await client.append("s1", { again: true });
    const ids = async (options: Parameters<typeof client.list>[0]) =>
      (await collect(client.list(options))).map((meta) => meta.sessionId);
    expect(await ids({ labelSelector: "user=alice" })).toEqual(["s1", "s3", "s4"]);
    expect(await ids({ labelSelector: "user!=alice" })).toEqual(["s2"]);
    expect(await ids({ order: "byUpdatedDesc", pageSize: 1 })).toEqual(["s1", "s4", "s3", "s2"]);
    expect(
      await ids({ order: "byUpdatedDesc", labelSelector: "user in (alice)", pageSize: 2 }),
    ).toEqual(["s1", "s4", "s3"]);
    expect(await ids({ order: "byId", prefix: "s", labelSelector: "user" })).toEqual([
      "s1",
      "s2",
      "s3",
      "s4",
    ]);
    const bad = await failure(collect(client.list({ labelSelector: "user in alice" })));
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
  });
});

describe("fork", () => {
  it("starts a session with the source's first messages; each then goes its own way", async () => {
    const { client } = await fixtures.start();
    await client.append("src", objects("m", 4), { labels: { user: "alice" } });
    const fork = await client.fork("src", 2, "branch", { labels: { branch: "b" } });
    expect(fork).toMatchObject({
      sessionId: "branch",
      messageCount: 2,
      parentSessionId: "src",
      parentSeq: 2,
      labels: { user: "alice", branch: "b" },
    });
    await client.append("branch", { other: true });
    await client.append("src", { n: 4 });
    expect((await collect(client.load("branch"))).map((entry) => entry.message)).toEqual([
      ...objects("m", 2),
      { other: true },
    ]);
    expect((await client.meta("src"))?.messageCount).toBe(5);
    await client.delete("src");
    expect((await collect(client.load("branch"))).length).toBe(3);
  });

  it("fails with ALREADY_EXISTS for a taken id and OUT_OF_RANGE past the source's end", async () => {
    const { client } = await fixtures.start();
    await client.append("src", objects("m", 2));
    await client.append("taken", { n: 0 });
    expect(await failure(client.fork("src", 1, "taken"))).toMatchObject({
      code: Status.ALREADY_EXISTS,
    });
    expect(await failure(client.fork("src", 3, "new"))).toMatchObject({
      code: Status.OUT_OF_RANGE,
      actualLength: 2,
    });
    expect(await failure(client.fork("nobody", 0, "new"))).toMatchObject({
      code: Status.NOT_FOUND,
    });
    expect(await client.meta("new")).toBeUndefined();
  });
});

describe("rewind", () => {
  it("drops the messages from toSeq on and answers them, parsed or raw", async () => {
    const { client } = await fixtures.start();
    await client.append("r", objects("r", 5));
    const { dropped, meta } = await client.rewind("r", 3);
    expect(dropped).toEqual([
      { seq: 3, message: { tag: "r", n: 3 } },
      { seq: 4, message: { tag: "r", n: 4 } },
    ]);
    expect(meta).toMatchObject({ sessionId: "r", messageCount: 3 });
    const raw = await client.rewind("r", 2, { raw: true, expectedSeq: 3 });
    expect(raw.dropped).toEqual([{ seq: 2, message: '{"tag":"r","n":2}' }]);
    expect(await client.append("r", { again: true })).toMatchObject({ seqs: [2] });
  });

  it("with expectedSeq, fails with ABORTED and the actual length when the session grew", async () => {
    const { client } = await fixtures.start();
    await client.append("r", objects("r", 3));
    expect(await failure(client.rewind("r", 1, { expectedSeq: 2 }))).toMatchObject({
      code: Status.ABORTED,
      actualLength: 3,
    });
    expect(await failure(client.rewind("r", 4))).toMatchObject({
      code: Status.OUT_OF_RANGE,
      actualLength: 3,
    });
    expect((await client.meta("r"))?.messageCount).toBe(3);
  });

  it("popLast removes and answers the last message, undefined once there is none", async () => {
    const { client } = await fixtures.start();
    await client.append("p", objects("p", 2));
    expect(await client.popLast("p")).toEqual({ seq: 1, message: { tag: "p", n: 1 } });
    expect(await client.popLast("p", { raw: true })).toEqual({
      seq: 0,
      message: '{"tag":"p","n":0}',
    });
    expect(await client.popLast("p")).toBeUndefined();
    expect(await client.popLast("nobody")).toBeUndefined();
  });
});

describe("trim", () => {
  it("drops the messages before beforeSeq, keeping the seqs; reading below is OUT_OF_RANGE with the first kept seq", async () => {
    const { client } = await fixtures.start();
    await client.append("t", objects("t", 5));
    const { trimmed, meta } = await client.trim("t", 3);
    expect(trimmed).toBe(3);
    expect(meta).toMatchObject({ firstSeq: 3, messageCount: 5 });
    expect((await collect(client.load("t"))).map((entry) => entry.seq)).toEqual([3, 4]);
    expect(await failure(collect(client.load("t", { fromSeq: 1 })))).toMatchObject({
      code: Status.OUT_OF_RANGE,
      firstSeq: 3,
    });
    expect(await failure(client.fork("t", 2, "f"))).toMatchObject({
      code: Status.OUT_OF_RANGE,
      firstSeq: 3,
    });
    expect(await client.trim("t", 3)).toMatchObject({ trimmed: 0 });
    expect(await failure(client.trim("t", 6))).toMatchObject({ code: Status.OUT_OF_RANGE });
    // The last message popped, the session holds nothing: popLast does not reach below first_seq.
    await client.trim("t", 4);
    expect((await client.popLast("t"))?.seq).toBe(4);
    expect(await client.popLast("t")).toBeUndefined();
  });
});

describe("loadWindow", () => {
  it("answers the newest messages within maxBytes and limit", async () => {
    const { client } = await fixtures.start();
    await client.append("w", ['{"n":0}', '{"n":1}', '{"n":22}', '{"n":333}']);
    const seqs = async (options: Parameters<typeof client.loadWindow>[1]) =>
      (await client.loadWindow("w", options)).messages.map((entry) => entry.seq);
    // 7, 7, 8 and 9 bytes.
    expect(await seqs({ maxBytes: 17 })).toEqual([2, 3]);
    expect(await seqs({ maxBytes: 16 })).toEqual([3]);
    expect(await seqs({ maxBytes: 24 })).toEqual([1, 2, 3]);
    expect(await seqs({ maxBytes: 1000, limit: 3 })).toEqual([1, 2, 3]);
    expect(await seqs({ maxBytes: 1000, fromSeq: 2 })).toEqual([2, 3]);
    expect(await client.loadWindow("nobody", { maxBytes: 10 })).toEqual({
      messages: [],
      danglingCallIds: [],
    });
  });

  it("with wholeTurns, starts at a person's message and reports the calls left without a result", async () => {
    const { client } = await fixtures.start();
    await client.append("chat", CHAT);
    const window = await client.loadWindow("chat", { limit: 5, wholeTurns: true });
    expect(window).toEqual({
      messages: [
        { seq: 4, message: CHAT[4] },
        { seq: 5, message: CHAT[5] },
      ],
      danglingCallIds: ["call_2"],
    });
    const whole = await client.loadWindow("chat", { wholeTurns: true, raw: true });
    expect(whole.messages.map((entry) => entry.message)).toEqual(
      CHAT.map((message) => JSON.stringify(message)),
    );
    expect(whole.danglingCallIds).toEqual(["call_2"]);
    // The interrupted turn repaired, nothing dangles.
    await client.append("chat", { role: "tool", tool_call_id: "call_2", content: "{}" });
    expect((await client.loadWindow("chat", { wholeTurns: true })).danglingCallIds).toEqual([]);
  });

  it("reads a window again from its start when the stream breaks midway, never resuming it", async () => {
    const { server } = await fixtures.start();
    // Pages of about 1 MiB: a window of 3 MiB comes in several.
    const big = Array.from({ length: 30 }, (_, n) =>
      JSON.stringify({ n, pad: "x".repeat(100_000) }),
    );
    const loads: string[] = [];
    let broken = false;
    const breakFirstLoadAfterAPage: Interceptor = (options, nextCall) => {
      const method = options.method_definition.path.split("/").at(-1) ?? "";
      const call: InterceptingCall = new InterceptingCall(nextCall(options), {
        start(metadata, _listener, next) {
          if (method === "Load") loads.push(method);
          next(metadata, {
            onReceiveMessage(message, nextMessage) {
              nextMessage(message);
              if (method === "Load" && !broken) {
                broken = true;
                call.cancelWithStatus(status.UNAVAILABLE, "the connection dropped (test)");
              }
            },
          });
        },
      });
      return call;
    };
    const client = fixtures.client(server.server.address, {
      grpcOptions: { interceptors: [breakFirstLoadAfterAPage] },
      retry: { initialDelayMs: 10 },
    });
    await client.append("big", big);
    const window = await client.loadWindow("big", { maxBytes: 25 * 100_030, raw: true });
    expect(broken).toBe(true);
    expect(loads.length).toBe(2);
    expect(window.messages.map((entry) => entry.seq)).toEqual(
      [...Array(25).keys()].map((i) => i + 5),
    );
    expect(window.messages.map((entry) => entry.message)).toEqual(big.slice(5));
  });
});

describe("watchEvents", () => {
  it("tells of a rewind below what it yielded, then goes on from the rewound seq", async () => {
    const { client } = await fixtures.start();
    await client.append("w", objects("w", 4));
    const events: WatchEvent<unknown>[] = [];
    const plain: number[] = [];
    const controller = new AbortController();
    const watching = Promise.all([
      (async () => {
        for await (const event of client.watchEvents("w", { signal: controller.signal })) {
          events.push(event);
        }
      })(),
      (async () => {
        for await (const { seq } of client.watch("w", { signal: controller.signal })) {
          plain.push(seq);
        }
      })(),
    ]).catch((error: unknown) => error);
    await expect.poll(() => events.length).toBe(4);
    await client.rewind("w", 2);
    await client.append("w", { after: "rewind" });
    await expect.poll(() => events.length).toBe(6);
    expect(events.slice(4)).toEqual([
      { kind: "rewound", toSeq: 2 },
      { kind: "message", seq: 2, message: { after: "rewind" } },
    ]);
    expect(events.slice(0, 4)).toEqual(
      objects("w", 4).map((message, seq) => ({ kind: "message", seq, message })),
    );
    // The plain watch says nothing of the rewind: its seqs start again from the rewound one.
    await expect.poll(() => plain).toEqual([0, 1, 2, 3, 2]);
    controller.abort();
    expect(await watching).toMatchObject({ code: Status.CANCELLED });
  });

  it("after a rewind, a reconnect goes on from the rewound seq: nothing skipped or repeated", async () => {
    const { server } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address, { retry: { initialDelayMs: 10 } });
    await client.append("w", objects("w", 3));
    const events: WatchEvent<unknown>[] = [];
    const watching = (async () => {
      for await (const event of client.watchEvents("w")) {
        events.push(event);
        if (events.length === 6) return;
      }
    })();
    await expect.poll(() => events.length).toBe(3);
    await client.rewind("w", 1);
    await expect.poll(() => events.length).toBe(4);
    expect(proxy.dropConnections()).toBeGreaterThan(0);
    // With expectedSeq, the append is retried through the dropped connection too.
    await client.append("w", [{ n: "one" }, { n: "two" }], { expectedSeq: 1 });
    await watching;
    expect(events.slice(3)).toEqual([
      { kind: "rewound", toSeq: 1 },
      { kind: "message", seq: 1, message: { n: "one" } },
      { kind: "message", seq: 2, message: { n: "two" } },
    ]);
  });

  it("tells of a rewind made while it was disconnected, and goes on from the rewound seq", async () => {
    const { server, client: direct } = await fixtures.start();
    const proxy = await fixtures.proxy(server.server.address);
    const client = fixtures.client(proxy.address, { retry: { initialDelayMs: 10 } });
    await direct.append("w", objects("w", 3));
    const events: WatchEvent<unknown>[] = [];
    const watching = (async () => {
      for await (const event of client.watchEvents("w")) {
        events.push(event);
        if (events.length === 5) return;
      }
    })();
    await expect.poll(() => events.length).toBe(3);
    // The watch loses its connection, and cannot reconnect until the session was rewound.
    proxy.pause();
    proxy.dropConnections();
    await direct.rewind("w", 1);
    proxy.resume();
    await expect.poll(() => events.length).toBe(4);
    await direct.append("w", { n: "after" });
    await watching;
    expect(events.slice(3)).toEqual([
      { kind: "rewound", toSeq: 1 },
      { kind: "message", seq: 1, message: { n: "after" } },
    ]);
  });
});

describe("retries", () => {
  it("retry setLabels on UNAVAILABLE only without an expected revision, and never fork, rewind or trim", async () => {
    const { server, client: direct } = await fixtures.start();
    await direct.append("r", objects("r", 4));
    // The first attempt of every call fails as a dropped connection would, before it is sent.
    const attempts: string[] = [];
    const failFirstAttempts: Interceptor = (options, nextCall) => {
      const method = options.method_definition.path.split("/").at(-1) ?? "";
      attempts.push(method);
      const first = attempts.filter((name) => name === method).length === 1;
      return new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          if (!first) return next(metadata, listener);
          listener.onReceiveStatus({
            code: status.UNAVAILABLE,
            details: "the connection dropped (test)",
            metadata: new Metadata(),
          });
        },
        sendMessage(message, next) {
          if (!first) next(message);
        },
        halfClose(next) {
          if (!first) next();
        },
      });
    };
    const client = fixtures.client(server.server.address, {
      grpcOptions: { interceptors: [failFirstAttempts] },
      retry: { initialDelayMs: 10 },
    });
    expect((await client.setLabels("r", { a: "1" })).labels).toEqual({ a: "1" });
    expect(attempts).toEqual(["SetLabels", "SetLabels"]);
    attempts.length = 0;
    const unavailable = { code: Status.UNAVAILABLE };
    // Counted afresh: the first attempt of each next call fails too, and is not retried.
    await expect(
      client.setLabels("r", { a: "2" }, { expectedLabelsRevision: 1 }),
    ).rejects.toMatchObject(unavailable);
    await expect(client.fork("r", 1, "f")).rejects.toMatchObject(unavailable);
    await expect(client.rewind("r", 3)).rejects.toMatchObject(unavailable);
    await expect(client.trim("r", 1)).rejects.toMatchObject(unavailable);
    expect(attempts).toEqual(["SetLabels", "Fork", "Rewind", "Trim"]);
    expect(await direct.meta("r")).toMatchObject({
      messageCount: 4,
      firstSeq: 0,
      labels: { a: "1" },
    });
  });
});
