// An example LangChain.js agent whose conversation is kept in sessionstore: a tool-calling loop
// over a chat model, every message recorded by SessionStoreChatMessageHistory, then the session
// resumed by a new history (a new connection, as after a restart) that reads it back. Start a
// server (`npm start`), then run `npm run example:langchain` from the repository root.
// SESSIONSTORE_ADDRESS names another server (default 127.0.0.1:50051); pass --keep to keep the
// session afterwards. The model is langchain-core's scripted fakeModel(); README.md says how to
// put a real one in its place.
import { AIMessage, HumanMessage, SystemMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { SessionStoreClient } from "@sessionstore/client";
import { SessionStoreChatMessageHistory } from "@sessionstore/client/langchain";

const address = process.env.SESSIONSTORE_ADDRESS ?? "127.0.0.1:50051";
const keep = process.argv.includes("--keep");
const sessionId = `example-langchain-${Date.now()}`;

const multiply = tool(({ a, b }) => String(BigInt(a) * BigInt(b)), {
  name: "multiply",
  description: "The exact product of two integers.",
  schema: {
    type: "object",
    properties: { a: { type: "integer" }, b: { type: "integer" } },
    required: ["a", "b"],
  },
});
const tools = { [multiply.name]: multiply };

/** The model: scripted replies (a tool call, then answers), as a real model would give them. */
function scriptedModel() {
  return fakeModel()
    .respond(
      new AIMessage({
        content: "",
        tool_calls: [
          { name: "multiply", args: { a: 12345679, b: 81 }, id: "call_1", type: "tool_call" },
        ],
      }),
    )
    .respond(new AIMessage("12345679 × 81 = 999999999."))
    .respond(new AIMessage("You asked me to multiply 12345679 by 81."));
}

const system = new SystemMessage("You are a helpful assistant with a multiply tool.");

/** One turn: the user's message, then the model and its tool calls until it answers. */
async function turn(model, history, text) {
  await history.addMessage(new HumanMessage(text));
  for (;;) {
    const reply = await model.invoke([system, ...(await history.getMessages())]);
    const results = await Promise.all(
      reply.tool_calls.map((call) => tools[call.name].invoke(call)),
    );
    // The reply and its tools' results, stored together in one append.
    await history.addMessages([reply, ...results]);
    for (const call of reply.tool_calls) console.log(`  tool call: ${call.name}`);
    if (reply.tool_calls.length === 0) return reply.content;
  }
}

const client = new SessionStoreClient(address);
try {
  // Fails after about 3 s with UNAVAILABLE when no server answers.
  await client.meta(sessionId, { timeoutMs: 3000 });
  console.log(`session ${sessionId} on ${address}`);
  const model = scriptedModel().bindTools([multiply]);
  const history = new SessionStoreChatMessageHistory({ sessionId, client });
  console.log(`user: What is 12345679 × 81?`);
  console.log(`assistant: ${await turn(model, history, "What is 12345679 × 81?")}`);
  console.log(`user: What did I ask?`);
  console.log(`assistant: ${await turn(model, history, "What did I ask?")}`);

  // Another process (here a new connection) resumes the conversation from the server.
  const resumed = new SessionStoreChatMessageHistory({ sessionId, address });
  const messages = await resumed.getMessages();
  resumed.close();
  console.log(
    `resumed: ${messages.length} messages: ${messages.map((m) => m.getType()).join(" ")}`,
  );
  const tool = messages.find((message) => message.getType() === "tool");
  console.log(`the tool's result, as stored: ${tool?.content}`);
  const meta = await client.meta(sessionId);
  console.log(`meta: ${meta?.messageCount} messages`);
  if (!keep) console.log(`deleted: ${await client.delete(sessionId)}`);
} finally {
  client.close();
}
