import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import {
  ListOrder,
  type SessionStoreClient,
  type WatchResponse,
} from "../../gen/sessionstore/v1/session_store.js";
import { DIALECTS, type Dialect } from "../../src/sessions/dialects.js";
import { REPOSITORY } from "../helpers/repository.js";
import { append, unaryRpcs } from "../helpers/test-server.js";
import {
  describeEachBackend,
  expectStatus,
  list,
  loadMeta,
  loadPages,
  messages,
  storageOf,
} from "./support.js";

/** A transcript in an agent API's own format (test/fixtures/dialects/README.md says whence). */
function transcript(dialect: Dialect): string[] {
  const text = readFileSync(join(REPOSITORY, "test/fixtures/dialects", `${dialect}.jsonl`), "utf8");
  return text.split("\n").filter((line) => line !== "");
}

/** Every session id a listing gives, following its page tokens. */
async function listAll(
  client: SessionStoreClient,
  request: { labelSelector?: string; order?: ListOrder; pageSize?: number },
): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await list(client, { ...request, pageToken });
    ids.push(...page.sessions.map((meta) => meta.sessionId));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

/** The trailing metadata value of `key` on a failed call. */
function trailer(error: ServiceError, key: string): string | undefined {
  return error.metadata?.get(key)[0]?.toString();
}

/** The call each transcript leaves without a result: its last turn was interrupted. */
const DANGLING: Record<Dialect, string> = {
  "openai-chat": "call_booking01",
  "openai-responses": "call_booking01",
  anthropic: "toolu_01CqVt3ZrLx8hKbNmPo9sW2y",
  gemini: "adk-b00k",
  motosan: "call_2",
};

const tick = () => new Promise((resolve) => setTimeout(resolve, 3));

describeEachBackend("labels, fork, rewind, trim and context windows", (start) => {
  it("labels sessions at creation and later, and lists them by selector, newest first", async () => {
    const { client } = await start();
    const rpc = unaryRpcs(client);
    for (const [id, user] of [
      ["chat-1", "alice"],
      ["chat-2", "bob"],
      ["chat-3", "alice"],
    ] as const) {
      await append(client, [{ sessionId: id, messages: ['{"a":1}'], labels: { user } }]);
      await tick();
    }
    await append(client, [{ sessionId: "chat-1", messages: ['{"a":2}'] }]);
    const labelled = await rpc.setLabels({ sessionId: "chat-2", labels: { env: "prod" } });
    expect(labelled.meta).toMatchObject({
      labels: { env: "prod", user: "bob" },
      labelsRevision: 2,
    });
    expect(
      await listAll(client, {
        labelSelector: "user=alice",
        order: ListOrder.LIST_ORDER_BY_UPDATED_DESC,
        pageSize: 1,
      }),
    ).toStrictEqual(["chat-1", "chat-3"]);
    expect(await listAll(client, { labelSelector: "env!=prod" })).toStrictEqual([
      "chat-1",
      "chat-3",
    ]);

    const stale = await expectStatus(
      rpc.setLabels({ sessionId: "chat-2", labels: { env: "dev" }, expectedLabelsRevision: 1 }),
      status.ABORTED,
      /revision 2/,
    );
    expect(trailer(stale, "sessionstore-actual-labels-revision")).toBe("2");
    await expectStatus(
      rpc.setLabels({ sessionId: "chat-2", labels: { "bad key!": "x" } }),
      status.INVALID_ARGUMENT,
      /label key/,
    );
    await expectStatus(
      list(client, { labelSelector: "user in (alice" }),
      status.INVALID_ARGUMENT,
      /label_selector/,
    );
    await expectStatus(
      rpc.setLabels({ sessionId: "nobody", labels: { a: "b" } }),
      status.NOT_FOUND,
    );
    const first = await list(client, { pageSize: 1, labelSelector: "user=alice" });
    await expectStatus(
      list(client, { pageSize: 1, labelSelector: "user=bob", pageToken: first.nextPageToken }),
      status.INVALID_ARGUMENT,
      /page_token/,
    );
  });

  it("forks at a message; the branches grow apart; the fork outlives its source", async () => {
    const { client } = await start();
    const rpc = unaryRpcs(client);
    await append(client, [
      { sessionId: "main", messages: messages("m", 5), labels: { user: "al" } },
    ]);
    const { meta } = await rpc.fork({
      sessionId: "main",
      atSeq: 3,
      newSessionId: "try-2",
      labels: { attempt: "2" },
    });
    expect(meta).toMatchObject({
      sessionId: "try-2",
      messageCount: 3,
      parentSessionId: "main",
      parentSeq: 3,
      labels: { attempt: "2", user: "al" },
    });
    await append(client, [{ sessionId: "try-2", messages: ['{"other":3}'], expectedSeq: 3 }]);
    await rpc.delete({ sessionId: "main" });
    const pages = await loadPages(client, "try-2");
    expect(pages.flatMap((page) => page.messages)).toStrictEqual([
      ...messages("m", 3),
      '{"other":3}',
    ]);
    await expectStatus(
      rpc.fork({ sessionId: "try-2", atSeq: 9, newSessionId: "x" }),
      status.OUT_OF_RANGE,
      /at most 4/,
    );
    await expectStatus(
      rpc.fork({ sessionId: "try-2", atSeq: 1, newSessionId: "try-2" }),
      status.ALREADY_EXISTS,
    );
    await expectStatus(
      rpc.fork({ sessionId: "try-2", atSeq: 1, newSessionId: "../escape" }),
      status.INVALID_ARGUMENT,
      /new_session_id/,
    );
  });

  it("rewinds only at the expected length, answering what it dropped; watchers are told", async () => {
    const { client } = await start();
    const rpc = unaryRpcs(client);
    await append(client, [{ sessionId: "r", messages: messages("m", 4) }]);
    const events: WatchResponse[] = [];
    const watching = client.watch({ sessionId: "r", fromSeq: 0 });
    watching.on("data", (event: WatchResponse) => events.push(event));
    watching.on("error", () => undefined);
    await expect.poll(() => events.flatMap((event) => event.messages).length).toBe(4);

    const stale = await expectStatus(
      rpc.rewind({ sessionId: "r", toSeq: 2, expectedSeq: 3 }),
      status.ABORTED,
    );
    expect(trailer(stale, "sessionstore-actual-length")).toBe("4");
    const rewound = await rpc.rewind({ sessionId: "r", toSeq: 3, expectedSeq: 4 });
    expect(rewound.droppedMessages).toStrictEqual(messages("m", 1, 3));
    expect(rewound.meta?.messageCount).toBe(3);
    await append(client, [{ sessionId: "r", messages: ['{"new":3}'], expectedSeq: 3 }]);

    await expect.poll(() => events.at(-1)?.messages).toStrictEqual(['{"new":3}']);
    watching.cancel();
    const rewoundAt = events.findIndex((event) => event.rewoundTo !== undefined);
    expect(events[rewoundAt]).toMatchObject({ rewoundTo: 3, firstSeq: 3, messages: [] });
    expect(events.slice(rewoundAt + 1)).toMatchObject([{ firstSeq: 3, messages: ['{"new":3}'] }]);
  });

  it("trims the oldest messages keeping seqs; reading below them says where they start", async () => {
    const { client } = await start();
    const rpc = unaryRpcs(client);
    await append(client, [{ sessionId: "t", messages: messages("m", 6) }]);
    const { trimmed, meta } = await rpc.trim({ sessionId: "t", beforeSeq: 4 });
    expect(trimmed).toBe(4);
    expect(meta).toMatchObject({ firstSeq: 4, messageCount: 6 });
    const pages = await loadPages(client, "t");
    expect(pages[0]?.firstSeq).toBe(4);
    expect(pages.flatMap((page) => page.messages)).toStrictEqual(messages("m", 2, 4));
    const below = await expectStatus(
      loadPages(client, "t", { fromSeq: 1 }),
      status.OUT_OF_RANGE,
      /before seq 4/,
    );
    expect(trailer(below, "sessionstore-first-seq")).toBe("4");
  });

  it("keeps labels, forks, rewinds and trims across a restart", async (test) => {
    const first = await start();
    if (first.config.storage === "memory") return test.skip();
    const rpc = unaryRpcs(first.client);
    await append(first.client, [
      { sessionId: "s", messages: messages("m", 5), labels: { user: "al" }, sync: true },
    ]);
    await rpc.fork({ sessionId: "s", atSeq: 4, newSessionId: "f" });
    await rpc.rewind({ sessionId: "s", toSeq: 3 });
    await rpc.trim({ sessionId: "s", beforeSeq: 1 });
    await first.stop();
    const second = await start(storageOf(first));
    expect(await loadMeta(second.client, "s")).toMatchObject({
      messageCount: 3,
      firstSeq: 1,
      labels: { user: "al" },
    });
    expect(await loadMeta(second.client, "f")).toMatchObject({
      messageCount: 4,
      parentSessionId: "s",
      parentSeq: 4,
    });
    const forked = await loadPages(second.client, "f");
    expect(forked.flatMap((page) => page.messages)).toStrictEqual(messages("m", 4));
  });

  it("reads a session's messages in the dialect its label fixes, and refuses one it does not know", async () => {
    const { client } = await start();
    const lines = transcript("openai-chat");
    await append(client, [
      { sessionId: "fixed", messages: lines, labels: { "sessionstore.dev/dialect": "anthropic" } },
      { sessionId: "detected", messages: lines },
    ]);
    const window = async (sessionId: string) => {
      const pages = await loadPages(client, sessionId, { wholeTurns: true });
      return {
        messages: pages.flatMap((page) => page.messages),
        dangling: pages.at(-1)?.danglingCallIds,
      };
    };
    // Detected, the Chat Completions call at the end has no result; read as Anthropic's
    // messages, these make no tool call at all.
    expect(await window("detected")).toStrictEqual({
      messages: lines.slice(1),
      dangling: ["call_booking01"],
    });
    expect(await window("fixed")).toStrictEqual({ messages: lines.slice(1), dangling: [] });
    await expectStatus(
      unaryRpcs(client).setLabels({
        sessionId: "fixed",
        labels: { "sessionstore.dev/dialect": "klingon" },
      }),
      status.INVALID_ARGUMENT,
      /openai-chat, openai-responses, anthropic, gemini, motosan/,
    );
  });

  for (const dialect of DIALECTS) {
    it(`loads a ${dialect} context window that starts a turn and names the dangling call`, async () => {
      const { client } = await start();
      const lines = transcript(dialect);
      await append(client, [{ sessionId: dialect, messages: lines }]);
      const bytes = lines.slice(-4).reduce((sum, line) => sum + Buffer.byteLength(line), 0);
      const pages = await loadPages(client, dialect, { maxBytes: bytes + 1, wholeTurns: true });
      const window = pages.flatMap((page) => page.messages);
      expect(window.length).toBeGreaterThan(0);
      expect(window.length).toBeLessThanOrEqual(4);
      // The newest messages, ending where the transcript does.
      expect(window).toStrictEqual(lines.slice(lines.length - window.length));
      expect(pages.at(-1)?.danglingCallIds).toStrictEqual([DANGLING[dialect]]);
      const plain = await loadPages(client, dialect, { maxBytes: bytes + 1 });
      expect(plain.flatMap((page) => page.messages)).toStrictEqual(lines.slice(-4));
      expect(plain.at(-1)?.danglingCallIds).toStrictEqual([]);
    });
  }
});
