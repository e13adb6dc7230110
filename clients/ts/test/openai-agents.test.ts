import { Agent, type AgentInputItem, run, setTracingDisabled, tool } from "@openai/agents-core";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents-core/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { SessionStoreError, Status } from "../src/index.js";
import { SessionStoreSession } from "../src/openai-agents.js";
import { fixturesClosedAfterEach } from "./support.js";

// SessionStoreSession (@sessionstore/client/openai-agents) with the real OpenAI Agents SDK and its
// scripted model: no network but the server's. The SDK ships no session test suite for other
// backends; these follow what its MemorySession shows.
const fixtures = fixturesClosedAfterEach();

beforeAll(() => setTracingDisabled(true));

/** Messages alternating user and assistant. */
function texts(count: number): AgentInputItem[] {
  return Array.from({ length: count }, (_, n) =>
    n % 2 === 0
      ? { role: "user", content: `Message ${n}` }
      : { role: "assistant", status: "completed", content: [] },
  );
}

async function sessionOn(sessionId: string) {
  const server = await fixtures.server();
  const store = fixtures.client(server.server.address);
  return { server, store, session: new SessionStoreSession({ sessionId, client: store }) };
}

describe("SessionStoreSession", () => {
  it("keeps items one message each, and reads all or the latest `limit`", async () => {
    const { store, session } = await sessionOn("oai-items");
    expect(await session.getSessionId()).toBe("oai-items");
    expect(await session.getItems()).toEqual([]);
    await session.addItems(texts(6));
    await session.addItems([]);
    expect(await session.getItems()).toEqual(texts(6));
    expect(await session.getItems(2)).toEqual(texts(6).slice(4));
    expect(await session.getItems(10)).toEqual(texts(6));
    expect(await session.getItems(0)).toEqual([]);
    const stored = [];
    for await (const { message } of store.load("oai-items", { raw: true })) stored.push(message);
    expect(stored).toEqual(texts(6).map((item) => JSON.stringify(item)));
  });

  it("pops latest first, then undefined; clearSession deletes the session", async () => {
    const { store, session } = await sessionOn("oai-pop");
    expect(await session.popItem()).toBeUndefined();
    await session.addItems(texts(3));
    for (const n of [2, 1, 0]) {
      expect(await session.popItem()).toEqual(texts(3)[n]);
      expect(await session.getItems()).toEqual(texts(3).slice(0, n));
    }
    expect(await session.popItem()).toBeUndefined();
    await session.addItems(texts(2));
    await session.clearSession();
    expect(await store.meta("oai-pop")).toBeUndefined();
    await session.clearSession();
  });

  it("pops at the new length when another writer appends in between", async () => {
    const { server, store } = await sessionOn("oai-raced");
    const raced = fixtures.client(server.server.address);
    const meta = raced.meta.bind(raced);
    raced.meta = async (sessionId, options) => {
      const read = await meta(sessionId, options);
      await store.append(sessionId, [{ role: "user", content: "in between" }]);
      return read;
    };
    const session = new SessionStoreSession({ sessionId: "oai-raced", client: raced });
    await session.addItems(texts(2));
    expect(await session.popItem()).toEqual({ role: "user", content: "in between" });
    expect(await session.getItems()).toEqual(texts(2));
  });

  it("concurrent pops from separate connections each take a different item", async () => {
    const { server, store } = await sessionOn("oai-concurrent");
    await store.append("oai-concurrent", texts(8));
    const sessions = Array.from(
      { length: 10 },
      () =>
        new SessionStoreSession({
          sessionId: "oai-concurrent",
          client: fixtures.client(server.server.address),
        }),
    );
    const popped = await Promise.all(sessions.map((session) => session.popItem()));
    expect(popped.filter((item) => item === undefined)).toHaveLength(2);
    const taken = popped.filter((item) => item !== undefined).map((item) => JSON.stringify(item));
    expect(taken.sort()).toEqual(
      texts(8)
        .map((item) => JSON.stringify(item))
        .sort(),
    );
    expect(await storedItems(store, "oai-concurrent")).toEqual([]);
  });

  it("a bad session id fails with INVALID_ARGUMENT; client and address go apart", async () => {
    const { store } = await sessionOn("oai-unused");
    const session = new SessionStoreSession({ sessionId: "no spaces", client: store });
    const error = await session.addItems(texts(1)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SessionStoreError);
    expect((error as SessionStoreError).code).toBe(Status.INVALID_ARGUMENT);
    expect(
      () => new SessionStoreSession({ sessionId: "x", client: store, address: "a:1" }),
    ).toThrow(/not both/);
  });

  it("records a runner's turns with a tool call, and a new session object resumes them", async () => {
    const server = await fixtures.server();
    const address = server.server.address;
    const getWeather = tool({
      name: "get_weather",
      description: "The weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
        additionalProperties: false,
      },
      strict: true,
      execute: async (input) => `Sunny in ${(input as { city: string }).city}`,
    });
    const model = new ScriptedModel([
      [functionCall("get_weather", { city: "Paris" }, { callId: "call_1" })],
      [assistantMessage("It is sunny in Paris.")],
      [assistantMessage("You asked about Paris.")],
    ]);
    const agent = new Agent({ name: "weather", model, tools: [getWeather] });
    const options = { address, clientOptions: { credentials: "insecure" as const } };

    const session = new SessionStoreSession({ sessionId: "oai-runner", ...options });
    const first = await run(agent, "What is the weather in Paris?", { session });
    session.close();
    expect(first.finalOutput).toBe("It is sunny in Paris.");

    const resumed = new SessionStoreSession({ sessionId: "oai-runner", ...options });
    const stored = await resumed.getItems();
    expect(stored.map((item) => ("type" in item ? item.type : undefined))).toEqual([
      "message",
      "function_call",
      "function_call_result",
      "message",
    ]);
    const second = await run(agent, "What did I ask about?", { session: resumed });
    expect(second.finalOutput).toBe("You asked about Paris.");
    const history = await resumed.getItems();
    expect(history).toHaveLength(6);
    expect(history.slice(0, 4)).toEqual(stored);
    expect(model.lastCall?.request.input).toEqual([
      ...stored,
      expect.objectContaining({ role: "user", content: "What did I ask about?" }),
    ]);
    resumed.close();
    model.assertComplete();
  });
});

/** What the session holds, read by the plain client. */
async function storedItems(
  store: ReturnType<typeof fixtures.client>,
  sessionId: string,
): Promise<unknown[]> {
  const items = [];
  for await (const { message } of store.load(sessionId)) items.push(message);
  return items;
}
