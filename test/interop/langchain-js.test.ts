import { join } from "node:path";
import { AIMessage, type BaseMessage, HumanMessage } from "@langchain/core/messages";
import { RunnableWithMessageHistory } from "@langchain/core/runnables";
import { fakeModel } from "@langchain/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import {
  SessionStoreChatMessageHistory,
  type StoredLangChainMessage,
} from "../../clients/ts/src/langchain.js";
import {
  assortedMessages,
  described,
  WEATHER_CALL,
} from "../../clients/ts/test/langchain-messages.js";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The LangChain histories of the two clients on one session: what Python's
 * (sessionstore.integrations.langchain) writes, TypeScript's (@sessionstore/client/langchain)
 * reads as the same messages, and the other way round, through langchain-core itself on both
 * sides. test/interop/python/langchain_exchange.py is the Python half; both sides check against
 * the same assorted messages (ASSORTED there, assortedMessages here).
 */

const missing = missingToolchains("python", "langchain");
const SCRIPT = "test/interop/python/langchain_exchange.py";

describe("LangChain histories, Python and TypeScript, on one session", skipWithout(missing), () => {
  let server: TestServer;
  let client: SessionStoreClient;
  const history = (sessionId: string) => new SessionStoreChatMessageHistory({ sessionId, client });
  const python = (...args: string[]) =>
    run(PYTHON, [SCRIPT, ...args], {
      env: {
        PYTHONPATH: join(REPOSITORY, "clients/python/src"),
        SESSIONSTORE_ADDRESS: server.server.address,
        SESSIONSTORE_PREFIX: "lcx",
      },
      timeoutMs: 60_000,
    });

  const storedForms = async (sessionId: string) => {
    const messages: StoredLangChainMessage[] = [];
    for await (const { message } of client.load<StoredLangChainMessage>(sessionId)) {
      messages.push(message);
    }
    return messages;
  };

  beforeAll(async () => {
    requireTools(missing);
    server = await startTestServer();
    client = new SessionStoreClient(server.server.address);
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("Python writes every kind of message; TypeScript reads the same ones", async () => {
    const wrote = await python("write", "lcx-from-python");
    expect(wrote.code, wrote.stderr).toBe(0);
    const read = await history("lcx-from-python").getMessages();
    expect(described(read)).toEqual(described(assortedMessages()));
    expect((read[2] as AIMessage).tool_calls).toEqual([WEATHER_CALL]);
  }, 90_000);

  it("TypeScript writes them; Python reads the same ones; both stored forms agree", async () => {
    await history("lcx-from-ts").addMessages(assortedMessages().slice(0, 3));
    await history("lcx-from-ts").addMessages(assortedMessages().slice(3));
    const checked = await python("check", "lcx-from-ts");
    expect(checked.code, checked.stderr).toBe(0);

    // Field by field, what each language stored, but for the fields Python stores as null (no
    // value) and TypeScript leaves out.
    const wrote = await python("write", "lcx-form");
    expect(wrote.code, wrote.stderr).toBe(0);
    const fromPython = await storedForms("lcx-form");
    const fromTs = await storedForms("lcx-from-ts");
    const withoutNulls = ({ type, data }: StoredLangChainMessage) => ({
      type,
      data: Object.fromEntries(Object.entries(data).filter(([, value]) => value !== null)),
    });
    expect(fromTs).toEqual(fromPython.map(withoutNulls));
  }, 90_000);

  it("a conversation Python began goes on in TypeScript's RunnableWithMessageHistory, and back", async () => {
    expect((await python("write", "lcx-chat")).code).toBe(0);
    const model = fakeModel().respond(
      new AIMessage({ content: "Rain.", id: "ai-9", response_metadata: { model_name: "fake" } }),
    );
    const chain = new RunnableWithMessageHistory({
      runnable: model,
      getMessageHistory: (sessionId: string) => history(sessionId),
    });
    await chain.invoke([new HumanMessage({ content: "And tomorrow?", id: "h-9" })], {
      configurable: { sessionId: "lcx-chat" },
    });
    // The model was given Python's messages, then the new question.
    const given: BaseMessage[] = model.calls[0]?.messages ?? [];
    expect(described(given.slice(0, -1))).toEqual(described(assortedMessages()));
    // Python reads its messages, then TypeScript's turn (written here as Python would write it).
    const turn = [
      { type: "human", data: { content: "And tomorrow?", id: "h-9" } },
      {
        type: "ai",
        data: { content: "Rain.", id: "ai-9", response_metadata: { model_name: "fake" } },
      },
    ];
    const checked = await python("check", "lcx-chat", JSON.stringify(turn));
    expect(checked.code, checked.stderr).toBe(0);
    const read = JSON.parse(checked.stdout.toString()) as { type: string }[];
    expect(read.map((message) => message.type).slice(-3)).toEqual([
      "AIMessageChunk",
      "human",
      "ai",
    ]);
  }, 90_000);
});
