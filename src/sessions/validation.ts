import { invalidArgument } from "../errors.js";

/** The session id rule of the contract, said the same way in every error. */
export const SESSION_ID_RULE =
  "a session id is 1-200 characters of [A-Za-z0-9._:@~-] and does not start with '.'";

const SESSION_ID_PATTERN = /^[A-Za-z0-9_:@~-][A-Za-z0-9._:@~-]{0,199}$/;

/**
 * Throws INVALID_ARGUMENT unless `sessionId` follows the rule. The rule keeps ids usable as file
 * names: no separators, no `..`, no hidden or temporary names (those start with '.').
 */
export function checkSessionId(sessionId: string): void {
  if (!SESSION_ID_PATTERN.test(sessionId)) {
    throw invalidArgument(`invalid session id ${describeId(sessionId)}: ${SESSION_ID_RULE}`);
  }
}

export function isValidSessionId(sessionId: string): boolean {
  return SESSION_ID_PATTERN.test(sessionId);
}

function describeId(sessionId: string): string {
  if (sessionId.length === 0) return "(empty)";
  if (sessionId.length > 40)
    return `${JSON.stringify(sessionId.slice(0, 40))}... (${sessionId.length} characters)`;
  return JSON.stringify(sessionId);
}

/**
 * Checks that `text` is one JSON object and returns it as it will be stored: byte for byte,
 * except that raw CR/LF become spaces. In valid JSON they can only be whitespace between tokens
 * (inside strings they must be escaped), so this keeps the meaning and one message per line.
 * The text is parsed only to validate it; re-serializing would lose integer digits past 2^53 and
 * rewrite escapes.
 */
export function normalizeMessage(text: string, index: number): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidArgument(
      `message ${index} is not valid JSON (${(error as Error).message}); each message must be one JSON object`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      `message ${index} is JSON ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}, not an object; each message must be one JSON object`,
    );
  }
  return text.includes("\n") || text.includes("\r") ? text.replace(/[\r\n]/g, " ") : text;
}
