import { invalidArgument } from "../errors.js";

/**
 * The message formats of the agent APIs, as far as a context window needs them: where a person's
 * turn starts, which tool calls a message makes and which results it carries. Each is recognised
 * from its real shape; nothing else of a message is interpreted.
 *
 * - OpenAI Chat Completions: `{role: "user"|"assistant"|"tool"|"system"|"developer", ...}`,
 *   calls in `tool_calls[].id`, results as `{role: "tool", tool_call_id}`.
 * - OpenAI Responses items (the Agents SDK's session items): `{type: "function_call", call_id}`,
 *   `{type: "function_call_output", call_id}`, `{type: "message", role}` or `{role, content}`.
 * - Anthropic Messages: `content` blocks `{type: "tool_use", id}` (assistant) and
 *   `{type: "tool_result", tool_use_id}` (in a user message, which is then no turn of a person).
 * - Gemini and ADK: `{role: "user"|"model", parts}` (or an ADK event's `content`), parts
 *   `{functionCall: {id?, name}}` and `{functionResponse: {id?, name}}`. The Gemini API gives
 *   calls no id: they pair with responses by name, as `name:<function name>`.
 * - motosan's `Message`: `{role: "User"|"Assistant"|"Tool"|"System", tool_calls: [{id}],
 *   tool_call_id}`.
 */

export const DIALECTS = [
  "openai-chat",
  "openai-responses",
  "anthropic",
  "gemini",
  "motosan",
] as const;
export type Dialect = (typeof DIALECTS)[number];

/** The label that fixes a session's dialect rather than detecting it per message. */
export const DIALECT_LABEL = "sessionstore.dev/dialect";

/** What a context window needs to know of one message. */
export interface MessageShape {
  /** A message a person wrote: a turn starts here. */
  startsTurn: boolean;
  /** Ids of the tool calls the message makes. */
  calls: string[];
  /** Ids of the tool calls whose results the message carries. */
  results: string[];
}

const NOTHING: MessageShape = { startsTurn: false, calls: [], results: [] };

type Json = Record<string, unknown>;

/**
 * The shape of `text` (one stored JSON object), in `dialect` when given, else in the dialect its
 * shape says. A message of no known dialect starts no turn and makes no call.
 */
export function shapeOf(text: string, dialect?: Dialect): MessageShape {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return NOTHING;
  }
  if (!isObject(message)) return NOTHING;
  const found = dialect ?? detectDialect(message);
  return found ? READERS[found](message) : NOTHING;
}

/** The dialect a message's shape says, or undefined when it says none. */
export function detectDialect(message: Json): Dialect | undefined {
  const { role, type } = message;
  if (role === "User" || role === "Assistant" || role === "Tool" || role === "System") {
    return "motosan";
  }
  if (
    Array.isArray(message.parts) ||
    (isObject(message.content) && Array.isArray(message.content.parts))
  ) {
    return "gemini";
  }
  if (typeof type === "string" && type !== "message") return "openai-responses";
  if (Array.isArray(message.content)) {
    const blocks = message.content.filter(isObject);
    if (blocks.some((block) => block.type === "tool_use" || block.type === "tool_result")) {
      return "anthropic";
    }
    if (
      blocks.some((block) => typeof block.type === "string" && /^(input|output)_/.test(block.type))
    ) {
      return "openai-responses";
    }
  }
  if (type === "message") return "openai-responses";
  if (typeof role === "string") return "openai-chat";
  return undefined;
}

const READERS: Record<Dialect, (message: Json) => MessageShape> = {
  "openai-chat": (message) => ({
    startsTurn: message.role === "user",
    calls: idsOf(message.tool_calls, "id"),
    results: message.role === "tool" ? stringsOf(message.tool_call_id) : [],
  }),
  "openai-responses": (message) => {
    switch (message.type) {
      case "function_call":
      case "custom_tool_call":
        return { startsTurn: false, calls: stringsOf(message.call_id), results: [] };
      case "function_call_output":
      case "custom_tool_call_output":
        return { startsTurn: false, calls: [], results: stringsOf(message.call_id) };
      case undefined:
      case "message":
        return { ...NOTHING, startsTurn: message.role === "user" };
      default:
        return NOTHING;
    }
  },
  anthropic: (message) => {
    const blocks = Array.isArray(message.content) ? message.content.filter(isObject) : [];
    const results = idsOf(
      blocks.filter((block) => block.type === "tool_result"),
      "tool_use_id",
    );
    return {
      startsTurn: message.role === "user" && results.length === 0,
      calls: idsOf(
        blocks.filter((block) => block.type === "tool_use"),
        "id",
      ),
      results,
    };
  },
  gemini: (message) => {
    const content = isObject(message.content) ? message.content : message;
    const parts = Array.isArray(content.parts) ? content.parts.filter(isObject) : [];
    const calls = parts.flatMap((part) => callIdOf(part.functionCall));
    const results = parts.flatMap((part) => callIdOf(part.functionResponse));
    return { startsTurn: content.role === "user" && results.length === 0, calls, results };
  },
  motosan: (message) => ({
    startsTurn: message.role === "User",
    calls: idsOf(message.tool_calls, "id"),
    results: message.role === "Tool" ? stringsOf(message.tool_call_id) : [],
  }),
};

/** A Gemini call's id, or (the Gemini API gives none) its function's name. */
function callIdOf(call: unknown): string[] {
  if (!isObject(call)) return [];
  if (typeof call.id === "string" && call.id !== "") return [call.id];
  return typeof call.name === "string" ? [`name:${call.name}`] : [];
}

function idsOf(items: unknown, key: string): string[] {
  if (!Array.isArray(items)) return [];
  return items.flatMap((item) => (isObject(item) ? stringsOf(item[key]) : []));
}

function stringsOf(value: unknown): string[] {
  return typeof value === "string" && value !== "" ? [value] : [];
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The dialect a session's labels fix, if they name one this server knows. */
export function dialectOfLabels(labels: Readonly<Record<string, string>>): Dialect | undefined {
  const named = labels[DIALECT_LABEL];
  return (DIALECTS as readonly string[]).includes(named ?? "") ? (named as Dialect) : undefined;
}

/** INVALID_ARGUMENT when a label change sets the dialect label to a dialect this server does not know. */
export function checkDialectLabel(change: Readonly<Record<string, string>>): void {
  const named = change[DIALECT_LABEL];
  if (named === undefined || named === "" || (DIALECTS as readonly string[]).includes(named))
    return;
  throw invalidArgument(
    `label ${DIALECT_LABEL} is ${JSON.stringify(named)}; it names the session's message format: one of ${DIALECTS.join(", ")}`,
  );
}
