import { type Dialect, detectDialect } from "../../sessions/dialects.js";
import type { Colors } from "./output.js";

/** The four roles a person tells apart, whatever the dialect calls them. */
export type Role = "user" | "assistant" | "tool" | "system" | "other";

/** A message as `cat` shows it on a terminal: its role, the dialect's name for it, its text. */
export interface Shown {
  role: Role;
  name: string;
  lines: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const compact = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/** Text of a content that is a string or a list of text parts (`{type, text}` or `{text}`). */
function textOf(content: unknown): string[] {
  if (typeof content === "string") return content === "" ? [] : [content];
  if (!Array.isArray(content)) return [];
  return content.flatMap((part) =>
    isObject(part) && typeof part.text === "string" ? [part.text] : [],
  );
}

const call = (name: unknown, args: unknown, id?: unknown) =>
  `-> ${compact(name)}(${compact(args ?? "")})${id ? ` [${compact(id)}]` : ""}`;
const result = (id: unknown, content: unknown) =>
  `<- ${id ? `[${compact(id)}] ` : ""}${textOf(content).join(" ") || compact(content)}`;

function roleOf(name: unknown): Role {
  switch (typeof name === "string" ? name.toLowerCase() : "") {
    case "user":
      return "user";
    case "assistant":
    case "model":
      return "assistant";
    case "tool":
    case "function":
      return "tool";
    case "system":
    case "developer":
      return "system";
    default:
      return "other";
  }
}

const SHOW: Record<Dialect, (message: Json) => Shown> = {
  motosan: (m) => ({
    role: roleOf(m.role),
    name: String(m.role),
    lines: [
      ...(m.role === "Tool" ? [result(m.tool_call_id, m.content)] : textOf(m.content)),
      ...(Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObject) : []).map((c) =>
        call(c.name, c.args, c.id),
      ),
    ],
  }),
  "openai-chat": (m) => ({
    role: roleOf(m.role),
    name: String(m.role),
    lines: [
      ...(m.role === "tool" ? [result(m.tool_call_id, m.content)] : textOf(m.content)),
      ...(Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObject) : []).map((c) => {
        const fn = isObject(c.function) ? c.function : {};
        return call(fn.name, fn.arguments, c.id);
      }),
    ],
  }),
  "openai-responses": (m) => {
    switch (m.type) {
      case "function_call":
      case "custom_tool_call":
        return {
          role: "assistant",
          name: m.type,
          lines: [call(m.name, m.arguments ?? m.input, m.call_id)],
        };
      case "function_call_output":
      case "custom_tool_call_output":
        return { role: "tool", name: m.type, lines: [result(m.call_id, m.output)] };
      case undefined:
      case "message":
        return { role: roleOf(m.role), name: String(m.role), lines: textOf(m.content) };
      default:
        return { role: "other", name: String(m.type), lines: [JSON.stringify(m)] };
    }
  },
  anthropic: (m) => {
    const blocks = Array.isArray(m.content) ? m.content.filter(isObject) : [];
    const results = blocks.filter((b) => b.type === "tool_result");
    return {
      role: results.length > 0 ? "tool" : roleOf(m.role),
      name: String(m.role),
      lines:
        typeof m.content === "string"
          ? [m.content]
          : blocks.flatMap((b) => {
              if (b.type === "text") return textOf([b]);
              if (b.type === "tool_use") return [call(b.name, b.input, b.id)];
              if (b.type === "tool_result") return [result(b.tool_use_id, b.content)];
              return [];
            }),
    };
  },
  gemini: (m) => {
    const content = isObject(m.content) ? m.content : m;
    const parts = Array.isArray(content.parts) ? content.parts.filter(isObject) : [];
    const answers = parts.some((p) => isObject(p.functionResponse));
    return {
      role: answers ? "tool" : roleOf(content.role),
      name: String(content.role),
      lines: parts.flatMap((p) => {
        if (typeof p.text === "string") return [p.text];
        if (isObject(p.functionCall)) return [call(p.functionCall.name, p.functionCall.args)];
        if (isObject(p.functionResponse)) {
          return [result(p.functionResponse.name, p.functionResponse.response)];
        }
        return [];
      }),
    };
  },
};

/** How `text` (a stored message) shows: in `dialect`, else in the one its shape says. */
export function show(text: string, dialect?: Dialect): Shown {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { role: "other", name: "?", lines: [text] };
  }
  if (!isObject(message)) return { role: "other", name: "?", lines: [text] };
  const found = dialect ?? detectDialect(message);
  if (!found) return { role: "other", name: "?", lines: [text] };
  return SHOW[found](message);
}

/** One message as a block of lines: `#seq role` coloured by role, then its text indented. */
export function renderMessage(seq: number, text: string, color: Colors, dialect?: Dialect): string {
  const shown = show(text, dialect);
  const paint = {
    user: color.green,
    assistant: color.cyan,
    tool: color.yellow,
    system: color.magenta,
    other: color.dim,
  }[shown.role];
  const body = shown.lines.flatMap((line) => line.split("\n")).map((line) => `    ${line}`);
  return `${color.dim(`#${seq}`)} ${paint(color.bold(shown.name))}\n${body.join("\n")}${body.length ? "\n" : ""}`;
}
