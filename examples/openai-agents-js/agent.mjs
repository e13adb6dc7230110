// An OpenAI Agents SDK (JavaScript) agent whose conversation is kept in sessionstore.
//
// A calculator assistant answers two questions, each with a call of its calculate tool, in a
// session on the server (SessionStoreSession). Then a new process resumes the conversation from
// the server and asks about it, and this one undoes that last turn (popItem), as an agent's
// "undo" would. The model is the offline stand-in of scripted-model.mjs (see the README for a
// real one).
//
//   npm run example:openai-agents-js [-- --session ID] [-- --keep]
//
// The server is $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051 (where `npm start` serves).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, run, setTracingDisabled, tool } from "@openai/agents-core";
import { SessionStoreError } from "@sessionstore/client";
import { SessionStoreSession } from "@sessionstore/client/openai-agents";
import { outputOf, ScriptedCalculatorModel, textOf } from "./scripted-model.mjs";

const QUESTIONS = ["What is 12 * 34?", "And 408 + 1?"];
const RECAP = "Which questions did I ask?";
const OPERATIONS = {
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  "/": (a, b) => a / b,
};

const calculate = tool({
  name: "calculate",
  description: "Computes `a op b`, for op one of + - * /.",
  parameters: {
    type: "object",
    properties: {
      a: { type: "number" },
      op: { type: "string", enum: Object.keys(OPERATIONS) },
      b: { type: "number" },
    },
    required: ["a", "op", "b"],
    additionalProperties: false,
  },
  strict: true,
  execute: async ({ a, op, b }) =>
    op === "/" && b === 0 ? "error: division by zero" : String(OPERATIONS[op](a, b)),
});

setTracingDisabled(true); // a scripted model: nowhere to send traces
const agent = new Agent({
  name: "Calculator",
  instructions: "Use the calculate tool for arithmetic. Answer in one short sentence.",
  tools: [calculate],
  model: new ScriptedCalculatorModel(),
});

/** One line for a session item (a message, a tool call or a tool result). */
function describe(item) {
  if (item.type === "function_call") return `tool call: ${item.name}(${item.arguments})`;
  if (item.type === "function_call_result") return `tool result: ${outputOf(item)}`;
  return `${item.role}: ${textOf(item)}`;
}

/**
 * One turn: the runner loads the history from the session, runs the agent (the model, and the
 * tool when the model calls it) and appends the turn's items to the session.
 */
async function turn(session, question) {
  console.log(`user: ${question}`);
  const result = await run(agent, question, { session });
  for (const item of result.newItems) console.log(`  ${describe(item.rawItem)}`);
}

/** What the new process does: it knows only the session id; the history is the server's. */
async function resume(session) {
  const items = await session.getItems();
  console.log(`[new process] resumed ${items.length} items from the server:`);
  for (const item of items) console.log(`  ${describe(item)}`);
  await turn(session, RECAP);
}

/** Undoes the last turn: pops items up to and including its user message. */
async function undo(session) {
  for (let item = await session.popItem(); item; item = await session.popItem()) {
    console.log(`undo: removed ${describe(item)}`);
    if (item.role === "user") break;
  }
  const items = await session.getItems();
  console.log(`the session holds ${items.length} items; the last: ${describe(items.at(-1))}`);
}

const { values: flags } = parseArgs({
  options: { session: { type: "string" }, keep: { type: "boolean" }, resume: { type: "boolean" } },
});
const address = process.env.SESSIONSTORE_ADDRESS ?? "127.0.0.1:50051";
const sessionId = flags.session ?? `example-openai-agents-js-${randomUUID().slice(0, 8)}`;
const session = new SessionStoreSession({ sessionId, address });
try {
  if (flags.resume) {
    await resume(session);
  } else {
    console.log(`session ${sessionId} on ${address}`);
    for (const question of QUESTIONS) await turn(session, question);
    // A new process, as after a restart or on another machine: the same session id resumes the
    // conversation.
    const self = fileURLToPath(import.meta.url);
    execFileSync(process.execPath, [self, "--session", sessionId, "--resume"], {
      stdio: "inherit",
    });
    await undo(session);
    if (flags.keep) {
      console.log(`kept ${sessionId}`);
    } else {
      await session.clearSession();
      console.log(`deleted ${sessionId}`);
    }
  }
} catch (error) {
  if (error instanceof SessionStoreError) {
    console.error(`sessionstore: ${error.message} (is a server running? \`npm start\` starts one)`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
} finally {
  session.close();
}
