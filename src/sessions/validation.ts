import { Code, invalidArgument, SessionStoreError } from "../errors.js";

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

/**
 * How deep a message may nest objects and arrays: motosan's reader, serde_json, stops at its
 * recursion limit of 128 (it fails on entering the 128th level).
 */
export const MAX_NESTING_DEPTH = 127;

export interface MessageLimits {
  maxMessageBytes: number;
  maxRequestMessages: number;
}

/**
 * Checks one request's messages against the limits and the JSON rule (see normalizeMessage) and
 * returns them as they will be stored.
 */
export function normalizeMessages(messages: readonly string[], limits: MessageLimits): string[] {
  if (messages.length > limits.maxRequestMessages) {
    throw new SessionStoreError(
      Code.ResourceExhausted,
      `the request holds ${messages.length} messages, over the limit of ${limits.maxRequestMessages} ` +
        "(--max-request-messages); send them in several requests",
    );
  }
  return messages.map((text, index) => {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: most messages need no exact count.
    if (text.length * 3 > limits.maxMessageBytes) {
      const bytes = Buffer.byteLength(text, "utf8");
      if (bytes > limits.maxMessageBytes) {
        throw new SessionStoreError(
          Code.ResourceExhausted,
          `message ${index} is ${bytes} bytes, over the limit of ${limits.maxMessageBytes} (--max-message-bytes)`,
        );
      }
    }
    const normalized = normalizeMessage(text, index);
    if (nestsDeeperThan(text, MAX_NESTING_DEPTH)) {
      throw invalidArgument(
        `message ${index} nests objects and arrays deeper than ${MAX_NESTING_DEPTH} levels, ` +
          "which motosan's reader cannot load; flatten it",
      );
    }
    return normalized;
  });
}

/**
 * Whether `text`, already known to be valid JSON, nests deeper than `limit`. Strings are skipped
 * with indexOf (native, fast on the long strings agent messages hold); brackets in them do not
 * count.
 */
function nestsDeeperThan(text: string, limit: number): boolean {
  // Deeper nesting needs more than `limit` opening and as many closing brackets.
  if (text.length <= 2 * limit) return false;
  let depth = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      index = closingQuote(text, index);
    } else if (code === 0x7b || code === 0x5b) {
      if (++depth > limit) return true;
    } else if (code === 0x7d || code === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote closing the JSON string that opens at `open`. */
function closingQuote(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close !== -1 && isEscaped(text, close)) close = text.indexOf('"', close + 1);
  return close === -1 ? text.length : close;
}

/** Whether the character at `index` follows an odd number of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(index - 1 - backslashes) === 0x5c) backslashes++;
  return backslashes % 2 === 1;
}
