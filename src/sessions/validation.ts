import { Code, invalidArgument, SessionStoreError } from "../errors.js";
import { type JsonScan, scanJson } from "../json-scan.js";

/**
 * Checks that `bytes` (valid UTF-8, as gRPC's decoding made sure) are one JSON object that
 * motosan's reader can load (see checkReadableByMotosan) and returns them as they will be
 * stored: byte for byte, except that raw CR/LF become spaces. In valid JSON they can only be
 * whitespace between tokens (inside strings they must be escaped), so this keeps the meaning and
 * one message per line. The bytes are scanned, never parsed into objects or decoded into a
 * string: re-serializing would lose integer digits past 2^53 and rewrite escapes, and building
 * either costs more than the check.
 */
export function normalizeMessage(bytes: Buffer, index: number): Buffer {
  const scan = scanJson(bytes);
  if (scan === undefined) {
    throw invalidArgument(
      `message ${index} is not valid JSON (${syntaxReason(bytes)}); each message must be one JSON object`,
    );
  }
  if (scan.kind !== "object") {
    throw invalidArgument(
      `message ${index} is JSON ${scan.kind}, not an object; each message must be one JSON object`,
    );
  }
  checkReadableByMotosan(bytes, scan, index);
  return scan.lineBreaks ? withoutLineBreaks(bytes) : bytes;
}

/**
 * Why JSON.parse refuses a text, without any of the text: message bodies never go into errors,
 * which clients and the log see. Only refused messages pay for decoding and parsing, so that the
 * reason is V8's own. V8 says where for most mistakes ("Expected ',' or '}' after property value
 * in JSON at position 8"), but quotes the text around an unexpected token ("Unexpected token
 * 'x', "{"a":x}" is not valid JSON"); only reasons of the first kind are kept.
 */
function syntaxReason(bytes: Buffer): string {
  let reason = "";
  try {
    JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    reason = error instanceof Error ? error.message : "";
  }
  return POSITIONAL_REASON.test(reason) ? reason : "an unexpected character or word";
}

/** V8's reasons that name a position and nothing of the text (their quotes are of the grammar). */
const POSITIONAL_REASON =
  /^(?:Unexpected end of JSON input|[A-Za-z ,'{}[\]:-]+ (?:in|after) JSON at position \d+(?: \(line \d+ column \d+\))?)$/;

/** A copy of `bytes` with CR and LF turned into spaces (the request's buffer stays as sent). */
function withoutLineBreaks(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  for (let at = 0; at < copy.length; at++) {
    if (copy[at] === 0x0a || copy[at] === 0x0d) copy[at] = 0x20;
  }
  return copy;
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
 * Checks one request's messages against the limits and the rules of normalizeMessage, and
 * returns them as they will be stored.
 */
export function normalizeMessages(messages: readonly Buffer[], limits: MessageLimits): Buffer[] {
  if (messages.length > limits.maxRequestMessages) {
    throw new SessionStoreError(
      Code.ResourceExhausted,
      `the request holds ${messages.length} messages, over the limit of ${limits.maxRequestMessages} ` +
        "(--max-request-messages); send them in several requests",
    );
  }
  return messages.map((bytes, index) => {
    if (bytes.length > limits.maxMessageBytes) {
      throw new SessionStoreError(
        Code.ResourceExhausted,
        `message ${index} is ${bytes.length} bytes, over the limit of ${limits.maxMessageBytes} (--max-message-bytes)`,
      );
    }
    return normalizeMessage(bytes, index);
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
 * this; and raw lone surrogates (not escapes) are not looked for, as gRPC delivers only valid
 * UTF-8, which cannot hold them (src/server/request-decoding.ts refuses anything else).
 *
 * The scan found the suspects on its way (depth, lone surrogate escapes, numbers that may reach
 * 1e308); only a suspect number sends us back to the bytes, which hold what a float rounds away.
 */
function checkReadableByMotosan(bytes: Buffer, scan: JsonScan, index: number): void {
  if (scan.depth > MAX_NESTING_DEPTH) {
    throw invalidArgument(
      `message ${index} nests objects and arrays deeper than ${MAX_NESTING_DEPTH} levels, ` +
        "which motosan's reader cannot load; flatten it",
    );
  }
  if (scan.loneSurrogate >= 0) {
    throw invalidArgument(
      `message ${index} holds a lone UTF-16 surrogate escape (at byte ${scan.loneSurrogate}), ` +
        "which serde_json (motosan's reader) and many JSON parsers refuse; " +
        "escape a whole surrogate pair (like \\ud83d\\ude00) or send the character itself",
    );
  }
  const { largeNumbers } = scan;
  for (let i = 0; i < largeNumbers.length; i += 2) {
    const start = largeNumbers[i] as number;
    const end = largeNumbers[i + 1] as number;
    if (serdeJsonOverflows(bytes, start, end)) {
      throw invalidArgument(
        `message ${index} holds a number that does not fit a 64-bit float ` +
          `(at byte ${start}, ${end - start} characters long), ` +
          "which serde_json (motosan's reader) refuses; send it as a string",
      );
    }
  }
}

function isDigit(code: number | undefined): boolean {
  return code !== undefined && code >= 0x30 && code <= 0x39;
}

const U64_MAX = 2n ** 64n - 1n;
const I32_MAX = 2 ** 31 - 1;
/** serde_json's table of powers of ten, 1e0 to 1e308, each correctly rounded as Rust's literals. */
const POWERS_OF_TEN = Array.from({ length: 309 }, (_, power) => Number(`1e${power}`));

/**
 * Whether serde_json refuses the number at [start, end) of `bytes` (valid JSON), one the scan
 * found may reach 1e308, as out of range.
 * This follows its parser step by step (de.rs without float_roundtrip: parse_integer,
 * parse_long_integer, parse_decimal, parse_exponent, f64_from_parts), because that is not
 * correctly rounded: it keeps the digits that fit a u64 significand, counts dropped integer
 * digits into the exponent, and multiplies by a power of ten in f64. So it refuses
 * 1.7976931348623158e308, which JSON.parse rounds to f64::MAX. Number(bigint) rounds as Rust's
 * `u64 as f64` does (to nearest, ties to even), and JavaScript numbers are the same IEEE 754
 * doubles as f64.
 */
function serdeJsonOverflows(bytes: Uint8Array, start: number, end: number): boolean {
  const integerStart = bytes[start] === 0x2d ? start + 1 : start;
  let integerEnd = integerStart;
  while (integerEnd < end && isDigit(bytes[integerEnd])) integerEnd++;
  let fractionEnd = integerEnd;
  if (fractionEnd < end && bytes[fractionEnd] === 0x2e) {
    fractionEnd++;
    while (fractionEnd < end && isDigit(bytes[fractionEnd])) fractionEnd++;
  }
  const written = writtenExponent(bytes, fractionEnd, end);
  let significand = 0n;
  let exponent = 0;
  // Integer digits join the significand until one would overflow it; that one and every later
  // one are dropped, each counted into the exponent.
  let full = false;
  for (let at = integerStart; at < integerEnd; at++) {
    const next = full ? undefined : withDigit(significand, bytes[at] as number);
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
    const next = full ? undefined : withDigit(significand, bytes[at] as number);
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
 * The exponent of the number whose exponent part (if any) is [at, end) of `bytes`, signed (0
 * without one); past i32, where serde_json stops reading it, I32_MAX + 1 with its sign.
 */
function writtenExponent(bytes: Uint8Array, at: number, end: number): number {
  if (at >= end) return 0;
  const sign = bytes[at + 1] === 0x2d ? -1 : 1;
  let digit = isDigit(bytes[at + 1]) ? at + 1 : at + 2; // past 'e' and any sign
  let written = 0;
  for (; digit < end; digit++) {
    written = written * 10 + (bytes[digit] as number) - 0x30;
    if (written > I32_MAX) return sign * (I32_MAX + 1);
  }
  return sign * written;
}

/** `significand` with the decimal digit `code` appended, unless that overflows a u64. */
function withDigit(significand: bigint, code: number): bigint | undefined {
  const next = significand * 10n + BigInt(code - 0x30);
  return next > U64_MAX ? undefined : next;
}
