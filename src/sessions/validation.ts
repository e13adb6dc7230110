// String.prototype.isWellFormed is in Node 20 (V8 11.3); the project's lib (ES2023) predates it.
/// <reference lib="es2024.string" />
import { Code, invalidArgument, SessionStoreError } from "../errors.js";

/**
 * Checks that `text` is one JSON object and returns it as it will be stored: byte for byte,
 * except that raw CR/LF become spaces. In valid JSON they can only be whitespace between tokens
 * (inside strings they must be escaped), so this keeps the meaning and one message per line.
 * The text is parsed only to validate it; re-serializing would lose integer digits past 2^53 and
 * rewrite escapes.
 */
export function normalizeMessage(text: string, index: number): string {
  parseObject(text, index);
  return withoutLineBreaks(text);
}

/** The object `text` holds; INVALID_ARGUMENT if it holds anything else. */
function parseObject(text: string, index: number): object {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidArgument(
      `message ${index} is not valid JSON (${syntaxReason(error)}); each message must be one JSON object`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      `message ${index} is JSON ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}, not an object; each message must be one JSON object`,
    );
  }
  return value;
}

/**
 * Why JSON.parse refused a text, without any of the text: message bodies never go into errors,
 * which clients and the log see. V8 says where for most mistakes ("Expected ',' or '}' after
 * property value in JSON at position 8"), but quotes the text around an unexpected token
 * ("Unexpected token 'x', "{"a":x}" is not valid JSON"); only reasons of the first kind are kept.
 */
function syntaxReason(error: unknown): string {
  const reason = error instanceof Error ? error.message : "";
  return POSITIONAL_REASON.test(reason) ? reason : "an unexpected character or word";
}

/** V8's reasons that name a position and nothing of the text (their quotes are of the grammar). */
const POSITIONAL_REASON =
  /^(?:Unexpected end of JSON input|[A-Za-z ,'{}[\]:-]+ (?:in|after) JSON at position \d+(?: \(line \d+ column \d+\))?)$/;

function withoutLineBreaks(text: string): string {
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
 * Checks one request's messages against the limits, the JSON rule (see normalizeMessage) and
 * what motosan's reader can load (see checkReadableByMotosan), and returns them as they will be
 * stored.
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
    checkReadableByMotosan(text, parseObject(text, index), index);
    return withoutLineBreaks(text);
  });
}

/**
 * Refuses what JSON.parse accepts but serde_json, motosan's reader, refuses: nesting past its
 * recursion limit, lone UTF-16 surrogate escapes, and numbers that overflow a 64-bit float. The
 * rule is serde_json 1.0 with its default features (no arbitrary_precision, no float_roundtrip:
 * what test/interop/motosan resolves) parsing a line as `serde_json::Value`. motosan itself
 * parses lines as its `Message` type, but the messages we keep are any agent's JSON objects:
 * what must hold is that serde_json reads them as JSON at all.
 * test/interop/serde-json-corpus.ts lists the edge cases; test/interop/polyglot.test.ts checks
 * them against the crate. Deliberate differences: JSON that is not an object is refused before
 * this (see parseObject); and raw lone surrogates (not escapes) are not looked for, as gRPC
 * delivers only valid UTF-8, which cannot hold them (src/server/request-decoding.ts refuses
 * anything else).
 *
 * This runs on every message, so it looks at the value JSON.parse already built, whose size is
 * the count of values rather than of characters: one walk finds suspects (depth, strings that
 * are not well-formed UTF-16, numbers of 1e308 or more), and only a suspect sends us back to the
 * text, which holds what JSON.parse rounded away.
 */
function checkReadableByMotosan(text: string, value: object, index: number): void {
  // Without a \u escape no string can hold a lone surrogate (the text itself is UTF-8, which
  // gRPC checks), so most messages skip the string checks. (Looking for \uD instead costs more
  // than it saves: in text escaped to ASCII, \u recurs every few characters.)
  const suspects = findSuspects(value, text.includes("\\u"), 1);
  if (suspects & TOO_DEEP) {
    throw invalidArgument(
      `message ${index} nests objects and arrays deeper than ${MAX_NESTING_DEPTH} levels, ` +
        "which motosan's reader cannot load; flatten it",
    );
  }
  const surrogate = suspects & ILL_FORMED_STRING ? loneSurrogateEscape(text) : undefined;
  if (surrogate !== undefined) {
    throw invalidArgument(
      `message ${index} holds a lone UTF-16 surrogate escape (at byte ${utf8Offset(text, surrogate)}), ` +
        "which serde_json (motosan's reader) and many JSON parsers refuse; " +
        "escape a whole surrogate pair (like \\ud83d\\ude00) or send the character itself",
    );
  }
  const number = suspects & LARGE_NUMBER ? outOfRangeNumber(text) : undefined;
  if (number !== undefined) {
    throw invalidArgument(
      `message ${index} holds a number that does not fit a 64-bit float ` +
        `(at byte ${utf8Offset(text, number.start)}, ${number.end - number.start} characters long), ` +
        "which serde_json (motosan's reader) refuses; send it as a string",
    );
  }
}

/** findSuspects found a value nested deeper than MAX_NESTING_DEPTH (and looked no further). */
const TOO_DEEP = 1;
/** findSuspects found a string or key with a lone surrogate. */
const ILL_FORMED_STRING = 2;
/**
 * findSuspects found a number of magnitude 1e308 or more (infinity included). serde_json can
 * only refuse those: f64::MAX is 1.797...e308, and its few rounding errors cannot bridge the gap.
 */
const LARGE_NUMBER = 4;

/**
 * The suspects in `value`, at `depth` (the message's object is at depth 1), as the flags above.
 * Recursion is bounded: it stops below MAX_NESTING_DEPTH.
 */
function findSuspects(value: unknown, checkStrings: boolean, depth: number): number {
  if (typeof value === "number") return value >= 1e308 || value <= -1e308 ? LARGE_NUMBER : 0;
  if (typeof value === "string")
    return checkStrings && !value.isWellFormed() ? ILL_FORMED_STRING : 0;
  if (typeof value !== "object" || value === null) return 0;
  if (depth > MAX_NESTING_DEPTH) return TOO_DEEP;
  let found = 0;
  if (Array.isArray(value)) {
    for (const item of value) {
      found |= findSuspects(item, checkStrings, depth + 1);
      if (found & TOO_DEEP) return found;
    }
  } else {
    for (const key in value) {
      if (checkStrings && !key.isWellFormed()) found |= ILL_FORMED_STRING;
      found |= findSuspects((value as Record<string, unknown>)[key], checkStrings, depth + 1);
      if (found & TOO_DEEP) return found;
    }
  }
  return found;
}

/** Where `index` falls in the UTF-8 encoding of `text`: an offset every client can count. */
function utf8Offset(text: string, index: number): number {
  return Buffer.byteLength(text.slice(0, index), "utf8");
}

/**
 * A `\u` escape of a UTF-16 surrogate, D800-DFFF. Backslashes occur only inside strings in valid
 * JSON, so the scan needs no string tracking, only `isEscaped` to tell an escape from an escaped
 * backslash followed by the letter u.
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;
/** A trailing (low) surrogate escape, DC00-DFFF, tried at one position (sticky). */
const TRAILING_SURROGATE_ESCAPE = /\\u[dD][c-fC-F][0-9a-fA-F]{2}/y;

/**
 * The index of the first surrogate escape in `text` (valid JSON) that is not a leading one
 * followed at once by a trailing one. serde_json decodes strings to UTF-8, which cannot hold half
 * a pair, so it refuses those; JSON.parse keeps them in the string it returns.
 */
function loneSurrogateEscape(text: string): number | undefined {
  SURROGATE_ESCAPE.lastIndex = 0;
  for (
    let match = SURROGATE_ESCAPE.exec(text);
    match !== null;
    match = SURROGATE_ESCAPE.exec(text)
  ) {
    const at = match.index;
    if (isEscaped(text, at)) continue;
    TRAILING_SURROGATE_ESCAPE.lastIndex = at + 6;
    if (
      !isTrailingSurrogateDigit(text.charCodeAt(at + 3)) &&
      TRAILING_SURROGATE_ESCAPE.test(text)
    ) {
      SURROGATE_ESCAPE.lastIndex = at + 12;
      continue;
    }
    return at;
  }
  return undefined;
}

/** Whether the third hex digit of a D... escape makes it a trailing surrogate (DC00-DFFF). */
function isTrailingSurrogateDigit(code: number): boolean {
  return (code >= 0x63 && code <= 0x66) || (code >= 0x43 && code <= 0x46); // c-f, C-F
}

/** The first number outside strings that serde_json refuses as out of range, as [start, end). */
function outOfRangeNumber(text: string): { start: number; end: number } | undefined {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      index = closingQuote(text, index);
    } else if (code === 0x2d || isDigit(code)) {
      let end = index + 1;
      while (end < text.length && isNumberCharacter(text.charCodeAt(end))) end++;
      if (serdeJsonOverflows(text, index, end)) return { start: index, end };
      index = end - 1;
    }
  }
  return undefined;
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

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** Digits, '.', 'e', 'E', '+' and '-': the characters a JSON number is made of. */
function isNumberCharacter(code: number): boolean {
  return (
    isDigit(code) ||
    code === 0x2e ||
    code === 0x65 ||
    code === 0x45 ||
    code === 0x2b ||
    code === 0x2d
  );
}

const U64_MAX = 2n ** 64n - 1n;
const I32_MAX = 2 ** 31 - 1;
/** serde_json's table of powers of ten, 1e0 to 1e308, each correctly rounded as Rust's literals. */
const POWERS_OF_TEN = Array.from({ length: 309 }, (_, power) => Number(`1e${power}`));

/**
 * Whether serde_json refuses the number at [start, end) of `text` (valid JSON) as out of range.
 * This follows its parser step by step (de.rs without float_roundtrip: parse_integer,
 * parse_long_integer, parse_decimal, parse_exponent, f64_from_parts), because that is not
 * correctly rounded: it keeps the digits that fit a u64 significand, counts dropped integer
 * digits into the exponent, and multiplies by a power of ten in f64. So it refuses
 * 1.7976931348623158e308, which JSON.parse rounds to f64::MAX. Number(bigint) rounds as Rust's
 * `u64 as f64` does (to nearest, ties to even), and JavaScript numbers are the same IEEE 754
 * doubles as f64.
 */
function serdeJsonOverflows(text: string, start: number, end: number): boolean {
  const integerStart = text.charCodeAt(start) === 0x2d ? start + 1 : start;
  let integerEnd = integerStart;
  while (integerEnd < end && isDigit(text.charCodeAt(integerEnd))) integerEnd++;
  let fractionEnd = integerEnd;
  if (fractionEnd < end && text.charCodeAt(fractionEnd) === 0x2e) {
    fractionEnd++;
    while (fractionEnd < end && isDigit(text.charCodeAt(fractionEnd))) fractionEnd++;
  }
  const written = writtenExponent(text, fractionEnd, end);
  // The number is below 10^(integer digits + exponent), and nothing below 10^308 overflows: this
  // spares every ordinary number of a long message the digit-by-digit work below.
  if (integerEnd - integerStart + written <= 308) return false;

  let significand = 0n;
  let exponent = 0;
  // Integer digits join the significand until one would overflow it; that one and every later
  // one are dropped, each counted into the exponent.
  let full = false;
  for (let at = integerStart; at < integerEnd; at++) {
    const next = full ? undefined : withDigit(significand, text.charCodeAt(at));
    if (next === undefined) {
      full = true;
      exponent++;
    } else {
      significand = next;
    }
  }
  // Fraction digits join it afresh, until one would overflow it; that one and the rest are lost.
  full = false;
  for (let at = integerEnd + 1; at < fractionEnd; at++) {
    const next = full ? undefined : withDigit(significand, text.charCodeAt(at));
    if (next === undefined) {
      full = true;
    } else {
      significand = next;
      exponent--;
    }
  }
  // An exponent past i32 is infinity unless the number is zero or the exponent negative.
  if (Math.abs(written) > I32_MAX) return significand !== 0n && written > 0;
  // serde_json adds with saturation; past ±2^31 the outcome is the same either way.
  exponent += written;
  // Zero stays zero and dividing cannot overflow: only positive exponents can refuse.
  if (significand === 0n || exponent < 0) return false;
  const power = POWERS_OF_TEN[exponent];
  return power === undefined || !Number.isFinite(Number(significand) * power);
}

/**
 * The exponent of the number whose exponent part (if any) is [at, end) of `text`, signed (0
 * without one); past i32, where serde_json stops reading it, I32_MAX + 1 with its sign.
 */
function writtenExponent(text: string, at: number, end: number): number {
  if (at >= end) return 0;
  const sign = text.charCodeAt(at + 1) === 0x2d ? -1 : 1;
  let digit = isDigit(text.charCodeAt(at + 1)) ? at + 1 : at + 2; // past 'e' and any sign
  let written = 0;
  for (; digit < end; digit++) {
    written = written * 10 + text.charCodeAt(digit) - 0x30;
    if (written > I32_MAX) return sign * (I32_MAX + 1);
  }
  return sign * written;
}

/** `significand` with the decimal digit `code` appended, unless that overflows a u64. */
function withDigit(significand: bigint, code: number): bigint | undefined {
  const next = significand * 10n + BigInt(code - 0x30);
  return next > U64_MAX ? undefined : next;
}
