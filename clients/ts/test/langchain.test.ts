import {
  AIMessage,
  AIMessageChunk,
  type BaseMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  SystemMessage,
  ToolMessage,
} from "@langchain/core/messages";
import { ChatPromptTemplate, MessagesPlaceholder } from "@langchain/core/prompts";
import { RunnableLambda, RunnableWithMessageHistory } from "@langchain/core/runnables";
import { fakeModel } from "@langchain/core/testing";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import { describe, expect, it } from "vitest";
import { type SessionStoreClient, SessionStoreError, Status } from "../src/index.js";
import { SessionStoreChatMessageHistory } from "../src/langchain.js";
import { assortedMessages as assorted, described, WEATHER_CALL } from "./langchain-messages.js";
import { fixturesClosedAfterEach } from "./support.js";

// SessionStoreChatMessageHistory (@sessionstore/client/langchain) with langchain-core itself
// (RunnableWithMessageHistory, its fake chat models) against a real server: no other network.
const fixtures = fixturesClosedAfterEach();

async function stored(store: SessionStoreClient, sessionId: string): Promise<unknown[]> {
  const messages: unknown[] = [];
  for await (const { message } of store.load(sessionId)) messages.push(message);
  return messages;
}

async function historyOn(sessionId: string) {
  const server = await fixtures.server();
  const store = fixtures.client(server.server.address);
  return {
    server,
    store,
    history: new SessionStoreChatMessageHistory({ sessionId, client: store }),
  };
}

describe("SessionStoreChatMessageHistory", () => {
  it("keeps every kind of message, each field round-tripping, read again by a new client", async () => {
    const { server, history } = await historyOn("lc-assorted");
    expect(await history.getMessages()).toEqual([]);
    const messages = assorted();
    await history.addMessages(messages.slice(0, 3));
    await history.addMessage(messages[3] as BaseMessage);
    await history.addMessages(messages.slice(4));

    const again = new SessionStoreChatMessageHistory({
      sessionId: "lc-assorted",
      address: server.server.address,
      clientOptions: { credentials: "insecure" },
    });
    try {
      const read = await again.getMessages();
      expect(described(read)).toEqual(described(messages));
      expect(read.map((message) => message.getType())).toEqual([
        "system",
        "human",
        "ai",
        "tool",
        "tool",
        "generic",
        "function",
        "ai",
      ]);
      expect(read[7]).toBeInstanceOf(AIMessageChunk);
      const ai = read[2] as AIMessage;
      expect(ai.tool_calls).toEqual([WEATHER_CALL]);
      expect(ai.response_metadata).toEqual({ model_name: "fake", finish_reason: "tool_calls" });
      expect(ai.additional_kwargs).toEqual({ refusal: null });
      expect(read[1]?.content).toEqual(messages[1]?.content);
      expect((read[3] as ToolMessage).artifact).toEqual({ raw: [18, "C"] });
    } finally {
      again.close();
    }
  });

  it("stores LangChain's serialized form, with Python's names for chat messages and chunks", async () => {
    const { store, history } = await historyOn("lc-form");
    const messages = assorted();
    await history.addMessages(messages);
    const kept = (await stored(store, "lc-form")) as { type: string; data: { type: string } }[];
    expect(kept.map((message) => message.type)).toEqual([
      "system",
      "human",
      "ai",
      "tool",
      "tool",
      "chat",
      "function",
      "AIMessageChunk",
    ]);
    // Each is `{type, data}`, data as LangChain serializes the message, naming its type too.
    const serialized = mapChatMessagesToStoredMessages(messages);
    expect(kept.map(({ type, data }) => ({ ...data, type }))).toEqual(
      serialized.map(({ data }, n) => ({ ...data, type: kept[n]?.type })),
    );
    expect(kept[2]).toMatchObject({ data: { tool_calls: [WEATHER_CALL] } });
  });

  it("adds a list of messages in one append, never interleaved with another's", async () => {
    const { store, history } = await historyOn("lc-atomic");
    const batch = (who: string) =>
      Array.from({ length: 5 }, (_, n) => new HumanMessage(`${who} ${n}`));
    // Two writers at once, from separate histories: each batch lands whole, one after the other.
    const other = new SessionStoreChatMessageHistory({ sessionId: "lc-atomic", client: store });
    await Promise.all([history.addMessages(batch("a")), other.addMessages(batch("b"))]);
    const contents = (await history.getMessages()).map((message) => message.content);
    expect([contents.slice(0, 5), contents.slice(5)]).toEqual(
      expect.arrayContaining([batch("a").map((m) => m.content), batch("b").map((m) => m.content)]),
    );
    expect((await store.meta("lc-atomic"))?.messageCount).toBe(10);
    // No messages, no request: the empty list creates no session.
    await new SessionStoreChatMessageHistory({ sessionId: "lc-none", client: store }).addMessages(
      [],
    );
    expect(await store.meta("lc-none")).toBeUndefined();
    await history.addUserMessage("hi");
    await history.addAIMessage("hello");
    expect((await history.getMessages()).slice(10)).toEqual([
      new HumanMessage("hi"),
      new AIMessage("hello"),
    ]);
  });

  it("clear deletes the session; adding starts it again; sessions stay apart", async () => {
    const { store, history: alice } = await historyOn("lc-alice");
    const bob = new SessionStoreChatMessageHistory({ sessionId: "lc-bob", client: store });
    await alice.addMessages([new HumanMessage("I am Alice")]);
    await bob.addMessages([new HumanMessage("I am Bob"), new AIMessage("Hi Bob")]);
    await alice.addMessages([new AIMessage("Hi Alice")]);
    expect((await alice.getMessages()).map((m) => m.content)).toEqual(["I am Alice", "Hi Alice"]);
    expect((await bob.getMessages()).map((m) => m.content)).toEqual(["I am Bob", "Hi Bob"]);

    await bob.clear();
    expect(await bob.getMessages()).toEqual([]);
    expect(await store.meta("lc-bob")).toBeUndefined();
    await bob.clear(); // clearing an empty history is no error
    expect(await alice.getMessages()).toHaveLength(2);
    await bob.addMessages([new HumanMessage("again")]);
    expect((await store.meta("lc-bob"))?.messageCount).toBe(1);
  });

  it("a bad session id fails with INVALID_ARGUMENT; a stored non-message names its seq", async () => {
    const { store } = await historyOn("lc-unused");
    const bad = new SessionStoreChatMessageHistory({ sessionId: "no spaces", client: store });
    for (const call of [() => bad.addMessages([new HumanMessage("x")]), () => bad.getMessages()]) {
      const error = await call().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SessionStoreError);
      expect((error as SessionStoreError).code).toBe(Status.INVALID_ARGUMENT);
    }
    await store.append("lc-foreign", [
      { type: "human", data: { content: "ok" } },
      { role: "user" },
    ]);
    const foreign = new SessionStoreChatMessageHistory({ sessionId: "lc-foreign", client: store });
    await expect(foreign.getMessages()).rejects.toThrow(
      'message 1 of session "lc-foreign" is not a LangChain message',
    );
    // A type langchain-core does not read back (RemoveMessage is an instruction, not history).
    await store.rewind("lc-foreign", 1);
    await store.append("lc-foreign", [{ type: "remove", data: { content: "" } }]);
    await expect(foreign.getMessages()).rejects.toThrow(/^message 1 .*unexpected type: remove$/);
  });

  it("leaves a client it was given open, closes one it made; refuses client and address", async () => {
    const { server, store, history } = await historyOn("lc-shared");
    await history.addMessages([new HumanMessage("kept")]);
    history.close();
    expect(await stored(store, "lc-shared")).toHaveLength(1);
    expect(
      () =>
        new SessionStoreChatMessageHistory({
          sessionId: "x",
          client: store,
          address: server.server.address,
        }),
    ).toThrow(/not both/);
    const own = new SessionStoreChatMessageHistory({
      sessionId: "lc-shared",
      address: server.server.address,
      clientOptions: { credentials: "insecure", retry: { maxAttempts: 1 } },
    });
    expect(await own.getMessages()).toHaveLength(1);
    own.close();
    await expect(own.getMessages()).rejects.toThrow();
  });
});

describe("SessionStoreChatMessageHistory in RunnableWithMessageHistory", () => {
  it("a prompt and FakeListChatModel over several turns: the model sees the history grow", async () => {
    const { store } = await historyOn("lc-unused");
    const prompt = ChatPromptTemplate.fromMessages([
      ["system", "You are terse."],
      new MessagesPlaceholder("history"),
      ["human", "{question}"],
    ]);
    const seen: BaseMessage[][] = [];
    const record = RunnableLambda.from((value: { messages: BaseMessage[] }) => {
      seen.push(value.messages);
      return value.messages;
    });
    const prompted = prompt.pipe((value) => ({ messages: value.toChatMessages() }));
    const model = new FakeListChatModel({ responses: ["Hello, Ann.", "Ann.", "Bye."] });
    const chain = new RunnableWithMessageHistory({
      runnable: prompted.pipe(record).pipe(model),
      // A history object per call, as a server handling requests would make one.
      getMessageHistory: (sessionId: string) =>
        new SessionStoreChatMessageHistory({ sessionId, client: store }),
      inputMessagesKey: "question",
      historyMessagesKey: "history",
    });
    const config = { configurable: { sessionId: "lc-chat" } };
    for (const question of ["I am Ann.", "Who am I?", "Goodbye."]) {
      await chain.invoke({ question }, config);
    }
    const turns = ["I am Ann.", "Hello, Ann.", "Who am I?", "Ann.", "Goodbye.", "Bye."];
    // The prompt's system message is the prompt's, not the history's: it is not stored.
    expect(seen.map((messages) => messages.map((m) => m.content))).toEqual([
      ["You are terse.", ...turns.slice(0, 1)],
      ["You are terse.", ...turns.slice(0, 3)],
      ["You are terse.", ...turns.slice(0, 5)],
    ]);
    const history = new SessionStoreChatMessageHistory({ sessionId: "lc-chat", client: store });
    const kept = await history.getMessages();
    expect(kept.map((message) => [message.getType(), message.content])).toEqual(
      turns.map((text, n) => [n % 2 === 0 ? "human" : "ai", text]),
    );
    // Another session through the same chain starts with nothing of the first.
    await chain.invoke({ question: "Hi?" }, { configurable: { sessionId: "lc-chat-other" } });
    expect(seen.at(-1)?.map((m) => m.content)).toEqual(["You are terse.", "Hi?"]);
    expect(await stored(store, "lc-chat")).toHaveLength(6);
  });

  it("turns with a tool call and its result, with metadata, kept exactly and resumed", async () => {
    const { store } = await historyOn("lc-unused");
    const call = new AIMessage({
      content: [{ type: "text", text: "Let me look." }],
      tool_calls: [WEATHER_CALL],
      id: "ai-1",
      response_metadata: { model_name: "scripted", finish_reason: "tool_calls" },
      additional_kwargs: { reasoning: { summary: ["weather"] } },
      usage_metadata: { input_tokens: 5, output_tokens: 2, total_tokens: 7 },
    });
    const answer = new AIMessage({ content: "It is 18°C in Paris.", id: "ai-2" });
    const model = fakeModel().respond(call).respond(answer);
    const chain = () =>
      new RunnableWithMessageHistory({
        runnable: model,
        getMessageHistory: (sessionId: string) =>
          new SessionStoreChatMessageHistory({ sessionId, client: store }),
      });
    const config = { configurable: { sessionId: "lc-tools" } };
    const system = new SystemMessage({ content: "Use the tools.", id: "s-1" });
    const question = new HumanMessage({ content: "Weather in Paris?", id: "h-1" });
    const first = (await chain().invoke([system, question], config)) as AIMessage;
    expect(first.tool_calls).toEqual([WEATHER_CALL]);
    const result = new ToolMessage({ content: "18°C", tool_call_id: "call_1", id: "t-1" });
    // A new chain and history objects: the second turn resumes from the server.
    await chain().invoke([result], config);

    const turns = [system, question, call, result, answer];
    expect(described(model.calls.map((c) => c.messages).at(-1) ?? [])).toEqual(
      described(turns.slice(0, 4)),
    );
    const kept = await new SessionStoreChatMessageHistory({
      sessionId: "lc-tools",
      client: store,
    }).getMessages();
    expect(kept.map((message) => message.getType())).toEqual([
      "system",
      "human",
      "ai",
      "tool",
      "ai",
    ]);
    expect(described(kept)).toEqual(described(turns));
    expect((kept[2] as AIMessage).tool_calls).toEqual([WEATHER_CALL]);
    expect(kept[2]?.response_metadata).toEqual(call.response_metadata);
    expect(kept[2]?.additional_kwargs).toEqual(call.additional_kwargs);
    expect(kept[2]?.content).toEqual(call.content);
    expect((kept[3] as ToolMessage).tool_call_id).toBe("call_1");
  });
});
