import { status } from "@grpc/grpc-js";
import { SessionStoreError } from "./errors.js";

/** A JSON object, as `JSON.parse` gives it. */
export type JsonObject = { [key: string]: unknown };

/**
 * A message to append: an object (sent as `JSON.stringify` gives it) or the JSON text of one
 * object (sent as is, so integers past 2^53 and escapes stay exactly as written).
 */
export type MessageInput = object | string;

/** Turns JSON text into a message; `JSON.parse` unless the client was given another. */
export type JsonParser = (text: string) => unknown;

/** A message read back, with its position in the session. */
export interface StoredMessage<T> {
  /** The message's position in the session, from 0. */
  seq: number;
  /** The message: parsed, or its stored JSON text when the call asked for `raw`. */
  message: T;
}

/**
 * The wire text of a message. Objects are stringified; text is checked to be one JSON object, so
 * that a bad message fails here, alone, and never the request it would share with others. Raw
 * CR/LF (valid only as whitespace between tokens) become spaces, as the server would store them:
 * the text sent is the text stored, which a resend after a reconnect relies on.
 */
export function encodeMessage(message: MessageInput, index?: number): string {
  if (typeof message === "string") {
    let value: unknown;
    try {
      value = JSON.parse(message);
    } catch (error) {
      throw notAnObject(index, `is not valid JSON (${(error as Error).message})`);
    }
    if (!isJsonObject(value)) throw notAnObject(index, "is JSON but not an object");
    return message.replace(/[\r\n]/g, " ");
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw notAnObject(index, "is not an object");
  }
  const text: unknown = JSON.stringify(message);
  if (typeof text !== "string" || !text.startsWith("{")) {
    throw notAnObject(index, "does not stringify to a JSON object");
  }
  return text;
}

/** Encodes a list of messages; at least one is required. */
export function encodeMessages(messages: readonly MessageInput[]): string[] {
  if (messages.length === 0) {
    throw new SessionStoreError(status.INVALID_ARGUMENT, "append needs at least one message");
  }
  return messages.map((message, index) => encodeMessage(message, index));
}

function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function notAnObject(index: number | undefined, problem: string): SessionStoreError {
  return new SessionStoreError(
    status.INVALID_ARGUMENT,
    `${index === undefined ? "the message" : `message ${index}`} ${problem}; each message must be one JSON object (an object, or its JSON text)`,
  );
}

/** The entries of one page of messages, parsed unless `parse` is undefined (raw text). */
export function* pageEntries<T>(
  firstSeq: number,
  messages: readonly string[],
  parse: JsonParser | undefined,
): Generator<StoredMessage<T>> {
  for (const [offset, text] of messages.entries()) {
    yield { seq: firstSeq + offset, message: (parse ? parse(text) : text) as T };
  }
}
