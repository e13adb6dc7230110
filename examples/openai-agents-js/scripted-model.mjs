// A stand-in for an LLM, so that the example runs offline: an OpenAI Agents SDK `Model` that
// answers from the conversation it is given, by three rules, as a calculator assistant would:
// - a question with arithmetic in it ("What is 12 * 34?") gets a call of the `calculate` tool;
// - a tool result gets an answer that states it ("12 * 34 = 408.");
// - any other question gets the list of the questions asked before it, which it can only know
//   from the history the session gave it.
// It implements the SDK's `Model` interface (what `new Agent({ model })` takes) for `run`; the
// SDK's ScriptedModel ("@openai/agents-core/testing") builds the same items from a fixed script.
import { Usage } from "@openai/agents-core";
import { assistantMessage, functionCall } from "@openai/agents-core/testing";

/** "12 * 34", "408 + 1", "-2.5 / 4": two numbers and an operator, as the calculate tool takes them. */
const ARITHMETIC = /(-?\d+(?:\.\d+)?)\s*([-+*/])\s*(-?\d+(?:\.\d+)?)/;

/** The text of a message item: a user's string, or the text parts of a reply. */
export function textOf(item) {
  if (typeof item.content === "string") return item.content;
  return (item.content ?? []).map((part) => part.text ?? "").join("");
}

/** The output text of a tool result item. */
export function outputOf(item) {
  return typeof item.output === "string" ? item.output : (item.output?.text ?? "");
}

/** The rules above; no network, no randomness. */
export class ScriptedCalculatorModel {
  async getResponse(request) {
    // The first turn of a new session may come as a plain string.
    const items =
      typeof request.input === "string"
        ? [{ role: "user", content: request.input }]
        : request.input;
    return { usage: new Usage(), output: [this.reply(items)] };
  }

  // biome-ignore lint/correctness/useYield: it answers `run`, not `run(..., { stream: true })`
  async *getStreamedResponse() {
    throw new Error("the scripted model answers run(), not streamed runs");
  }

  reply(items) {
    const last = items.at(-1);
    const replies = items.filter((item) => item.role === "assistant").length;
    if (last.type === "function_call_result") {
      const call = items.findLast(
        (item) => item.type === "function_call" && item.callId === last.callId,
      );
      const { a, op, b } = JSON.parse(call.arguments);
      return assistantMessage(`${a} ${op} ${b} = ${outputOf(last)}.`, {
        id: `msg_${replies + 1}`,
      });
    }
    const question = textOf(last);
    const arithmetic = ARITHMETIC.exec(question);
    if (arithmetic) {
      const [, a, op, b] = arithmetic;
      const calls = items.filter((item) => item.type === "function_call").length;
      return functionCall(
        "calculate",
        { a: Number(a), op, b: Number(b) },
        { callId: `call_${calls + 1}` },
      );
    }
    const earlier = items.slice(0, -1).filter((item) => item.role === "user");
    const answer = earlier.length
      ? `You asked: ${earlier.map((item) => `"${textOf(item)}"`).join("; ")}.`
      : "This is your first question.";
    return assistantMessage(answer, { id: `msg_${replies + 1}` });
  }
}
