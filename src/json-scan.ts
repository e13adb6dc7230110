/**
 * A JSON validator that works on UTF-8 bytes and builds nothing: no objects, no strings. It
 * accepts exactly what JSON.parse accepts (test/json-scan.test.ts checks that against
 * JSON.parse on random and mutated inputs) and notes, on the way, what message validation must
 * look at further: the nesting depth, lone surrogate escapes, numbers that may not fit a float,
 * raw line breaks.
 *
 * The bytes must be valid UTF-8 (its callers check that first: the Append decoder, the scan of
 * a file's records): bytes of 0x80 and above are accepted inside strings without decoding them,
 * as every such sequence is then a character JSON.parse accepts there. Message validation
 * (src/sessions/validation.ts) and the file backend's record scan share it.
 */

/** The kind of a JSON text's value, as `typeof` would name it after JSON.parse (plus array, null). */
export type JsonKind = "object" | "array" | "string" | "number" | "boolean" | "null";

/** What a scan of valid JSON found. */
export interface JsonScan {
  kind: JsonKind;
  /** The deepest nesting of objects and arrays: 1 for `{}`, 0 for a bare string. */
  depth: number;
  /** The byte offset of the first `\u` escape of a surrogate that is not half of a pair; -1: none. */
  loneSurrogate: number;
  /**
   * Numbers whose magnitude may reach 1e308 (integer digits plus written exponent past 308), as
   * [start, end) byte offsets one after another; empty for nearly every text.
   */
  largeNumbers: number[];
  /** Whether the text holds a raw CR or LF (necessarily whitespace between tokens). */
  lineBreaks: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;

/** 1 for the bytes a string holds as they are: not a quote, a backslash or a control character. */
const PLAIN_IN_STRING = new Uint8Array(256).map((_, byte) =>
  byte >= 0x20 && byte !== QUOTE && byte !== BACKSLASH ? 1 : 0,
);

/** 1 for the bytes that may follow a backslash, `u` apart: " \ / b f n r t. */
const SIMPLE_ESCAPE = new Uint8Array(256).map((_, byte) =>
  `"\\/bfnrt`.includes(String.fromCharCode(byte)) ? 1 : 0,
);

/** Where a number may start being too large to check cheaply (see JsonScan.largeNumbers). */
const LARGE_MAGNITUDE = 308;

/** The scan of `bytes` if they are one JSON text that JSON.parse accepts, else undefined. */
export function scanJson(bytes: Uint8Array): JsonScan | undefined {
  return new Scanner(bytes).scan();
}

/** The value of a hex digit byte, or -1. */
function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39;
}

/** The bytes of each literal, by its first byte. */
const LITERALS: ReadonlyMap<number, { bytes: Uint8Array; kind: JsonKind }> = new Map(
  (["true", "false", "null"] as const).map((word) => [
    word.charCodeAt(0),
    { bytes: Buffer.from(word, "latin1"), kind: word === "null" ? "null" : "boolean" },
  ]),
);

/**
 * One scan. Iterative, with an explicit stack of open containers, so that any depth JSON.parse
 * accepts is accepted here too. Every step returns the offset it reached, or -1 for a text that
 * is not JSON.
 */
class Scanner {
  private readonly stack: number[] = [];
  private loneSurrogate = -1;
  private readonly largeNumbers: number[] = [];
  private lineBreaks = false;
  private depth = 0;

  constructor(private readonly bytes: Uint8Array) {}

  scan(): JsonScan | undefined {
    const { bytes, stack } = this;
    let at = this.whitespace(0);
    const kind = this.kindAt(at);
    if (kind === undefined) return undefined;
    value: for (;;) {
      at = this.value(at);
      if (at === OPENED) {
        at = this.afterOpen();
        if (at === CLOSED) at = this.position;
        else if (at < 0) return undefined;
        else continue;
      } else if (at < 0) {
        return undefined;
      }
      // After a value: a comma and the next one, or the end of containers, or of the text.
      for (;;) {
        at = this.whitespace(at);
        const open = stack.at(-1);
        if (open === undefined) {
          if (at !== bytes.length) return undefined;
          return {
            kind,
            depth: this.depth,
            loneSurrogate: this.loneSurrogate,
            largeNumbers: this.largeNumbers,
            lineBreaks: this.lineBreaks,
          };
        }
        const byte = bytes[at];
        if (byte === COMMA) {
          at = this.whitespace(at + 1);
          if (open === OPEN_OBJECT) at = this.key(at);
          if (at < 0) return undefined;
          continue value;
        }
        if (byte !== (open === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return undefined;
        stack.pop();
        at++;
      }
    }
  }

  /** Where `value` left off after opening a container (OPENED). */
  private position = 0;

  /**
   * Scans the value at `at` (whitespace skipped): the offset after it, or OPENED after pushing
   * a container whose contents follow at `position`.
   */
  private value(at: number): number {
    const { bytes } = this;
    const byte = bytes[at];
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      this.stack.push(byte);
      if (this.stack.length > this.depth) this.depth = this.stack.length;
      this.position = at + 1;
      return OPENED;
    }
    if (byte === QUOTE) return this.string(at);
    if (byte === MINUS || isDigit(byte)) return this.number(at);
    const literal = byte === undefined ? undefined : LITERALS.get(byte);
    if (literal === undefined) return -1;
    for (let i = 1; i < literal.bytes.length; i++) {
      if (bytes[at + i] !== literal.bytes[i]) return -1;
    }
    return at + literal.bytes.length;
  }

  /**
   * After `{` or `[`: CLOSED (with `position` after the closing bracket) for an empty container,
   * else the offset of its first value (past the first key for an object).
   */
  private afterOpen(): number {
    const { bytes, stack } = this;
    const at = this.whitespace(this.position);
    const open = stack.at(-1);
    if (bytes[at] === (open === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
      stack.pop();
      this.position = at + 1;
      return CLOSED;
    }
    return open === OPEN_OBJECT ? this.key(at) : at;
  }

  /** A key, its colon and the whitespace after it, from `at`: the offset of the value. */
  private key(at: number): number {
    if (this.bytes[at] !== QUOTE) return -1;
    let next = this.string(at);
    if (next < 0) return -1;
    next = this.whitespace(next);
    if (this.bytes[next] !== COLON) return -1;
    return this.whitespace(next + 1);
  }

  /** The offset of the first byte from `at` on that is not JSON whitespace. */
  private whitespace(at: number): number {
    const { bytes } = this;
    for (; at < bytes.length; at++) {
      const byte = bytes[at];
      if (byte === 0x20 || byte === 0x09) continue;
      if (byte === 0x0a || byte === 0x0d) {
        this.lineBreaks = true;
        continue;
      }
      break;
    }
    return at;
  }

  /** The string opening at `at`: the offset after its closing quote. */
  private string(at: number): number {
    const { bytes } = this;
    const end = bytes.length;
    let i = at + 1;
    for (;;) {
      // Most of a message is plain characters: one table lookup each, nothing else.
      while (i < end && PLAIN_IN_STRING[bytes[i] as number] === 1) i++;
      if (i >= end) return -1;
      const byte = bytes[i];
      if (byte === QUOTE) return i + 1;
      if (byte !== BACKSLASH) return -1; // a control character
      const escaped = bytes[i + 1];
      if (escaped === 0x75) {
        i = this.unicodeEscape(i);
        if (i < 0) return -1;
      } else if (escaped !== undefined && SIMPLE_ESCAPE[escaped] === 1) {
        i += 2;
      } else {
        return -1;
      }
    }
  }

  /**
   * The `\uXXXX` escape at `at`: the offset after it, or after both escapes of a surrogate
   * pair. Notes the first surrogate escape that is not half of a pair.
   */
  private unicodeEscape(at: number): number {
    const code = this.escapedCode(at);
    if (code < 0) return -1;
    if (code < 0xd800 || code > 0xdfff) return at + 6;
    if (code <= 0xdbff && this.bytes[at + 6] === BACKSLASH && this.bytes[at + 7] === 0x75) {
      const trailing = this.escapedCode(at + 6);
      if (trailing >= 0xdc00 && trailing <= 0xdfff) return at + 12;
    }
    if (this.loneSurrogate < 0) this.loneSurrogate = at;
    return at + 6;
  }

  /** The code of the `\uXXXX` escape at `at`, or -1 when its four hex digits are not there. */
  private escapedCode(at: number): number {
    let code = 0;
    for (let i = at + 2; i < at + 6; i++) {
      const digit = hexValue(this.bytes[i]);
      if (digit < 0) return -1;
      code = code * 16 + digit;
    }
    return code;
  }

  /** The number starting at `at`: the offset after it. */
  private number(at: number): number {
    const { bytes } = this;
    let i = bytes[at] === MINUS ? at + 1 : at;
    const integerStart = i;
    if (bytes[i] === ZERO) {
      i++;
    } else {
      if (!isDigit(bytes[i])) return -1;
      while (isDigit(bytes[i])) i++;
    }
    const integerDigits = i - integerStart;
    if (bytes[i] === 0x2e) {
      i++;
      if (!isDigit(bytes[i])) return -1;
      while (isDigit(bytes[i])) i++;
    }
    let exponent = 0;
    if (((bytes[i] ?? 0) | 0x20) === 0x65) {
      // 'e' or 'E'
      i++;
      const sign = bytes[i] === MINUS ? -1 : 1;
      if (bytes[i] === MINUS || bytes[i] === 0x2b) i++;
      if (!isDigit(bytes[i])) return -1;
      for (; isDigit(bytes[i]); i++) {
        // Capped: anything past it is large whatever the integer digits are.
        if (exponent <= LARGE_MAGNITUDE) exponent = exponent * 10 + (bytes[i] as number) - ZERO;
      }
      exponent *= sign;
    }
    if (integerDigits + exponent > LARGE_MAGNITUDE) this.largeNumbers.push(at, i);
    return i;
  }

  /** The kind of the value at `at`, from its first byte; undefined when none can start there. */
  private kindAt(at: number): JsonKind | undefined {
    const byte = this.bytes[at];
    if (byte === OPEN_OBJECT) return "object";
    if (byte === OPEN_ARRAY) return "array";
    if (byte === QUOTE) return "string";
    if (byte === MINUS || isDigit(byte)) return "number";
    return byte === undefined ? undefined : LITERALS.get(byte)?.kind;
  }
}

/** What Scanner.value answers after opening a container. */
const OPENED = -2;
/** What Scanner.afterOpen answers for an empty container. */
const CLOSED = -3;
