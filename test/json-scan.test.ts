import { isUtf8 } from "node:buffer";
import { describe, expect, it } from "vitest";
import { scanJson } from "../src/json-scan.js";
import { between, mulberry32, type Random } from "./helpers/random.js";

/** Whether JSON.parse accepts the UTF-8 text `bytes` hold. */
function parses(bytes: Uint8Array): boolean {
  try {
    JSON.parse(Buffer.from(bytes).toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[between(random, 0, items.length - 1)] as T;
}

/** Pieces that exercise the grammar's corners: escapes, surrogates, numbers, whitespace. */
const STRING_PIECES = [
  "a",
  "é",
  "😀",
  "\u2028",
  "\\n",
  '\\"',
  "\\\\",
  "\\/",
  "\\u00e9",
  "\\uD83D\\uDE00",
  "\\ud800",
  "\\udfff",
  "\u007f",
];
const NUMBERS = ["0", "-0", "1", "-12", "3.25", "1e5", "1E-7", "2.5e+3", "1e400", "-0.0e0", "123"];
const WHITESPACE = ["", "", " ", "\t", "\n", "\r\n", "  "];

function randomString(random: Random): string {
  const pieces = Array.from({ length: between(random, 0, 4) }, () => pick(random, STRING_PIECES));
  return `"${pieces.join("")}"`;
}

/** A random JSON text (valid), nested up to `depth`. */
function randomJson(random: Random, depth: number): string {
  const space = () => pick(random, WHITESPACE);
  switch (between(random, 0, depth > 0 ? 6 : 3)) {
    case 0:
      return pick(random, NUMBERS);
    case 1:
      return pick(random, ["true", "false", "null"]);
    case 2:
    case 3:
      return randomString(random);
    case 4:
    case 5: {
      const entries = Array.from(
        { length: between(random, 0, 4) },
        () =>
          `${space()}${randomString(random)}${space()}:${space()}${randomJson(random, depth - 1)}${space()}`,
      );
      return `{${entries.join(",") || space()}}`;
    }
    default: {
      const items = Array.from(
        { length: between(random, 0, 4) },
        () => `${space()}${randomJson(random, depth - 1)}${space()}`,
      );
      return `[${items.join(",") || space()}]`;
    }
  }
}

/** Bytes that JSON texts are made of and broken by. */
const MUTATION_BYTES = Buffer.from(
  '{}[]",:\\u0123456789abcdefE+-. \t\n\rtrunlsx\u0000\u001f',
  "latin1",
);

/** `bytes` with one to three random edits: a byte replaced, removed, inserted or duplicated. */
function mutate(random: Random, bytes: Buffer): Buffer {
  let result = bytes;
  for (let edits = between(random, 1, 3); edits > 0; edits--) {
    const at = between(random, 0, result.length);
    const byte = Buffer.of(MUTATION_BYTES[between(random, 0, MUTATION_BYTES.length - 1)] as number);
    switch (between(random, 0, 3)) {
      case 0:
        result = Buffer.concat([result.subarray(0, at), byte, result.subarray(at + 1)]);
        break;
      case 1:
        result = Buffer.concat([result.subarray(0, at), result.subarray(at + 1)]);
        break;
      case 2:
        result = Buffer.concat([result.subarray(0, at), byte, result.subarray(at)]);
        break;
      default:
        result = Buffer.concat([result.subarray(0, at), result.subarray(Math.max(at - 1, 0))]);
    }
  }
  return result;
}

describe("scanJson", () => {
  it("agrees with JSON.parse on random JSON texts and on mutations of them", () => {
    const random = mulberry32(17);
    let valid = 0;
    let invalid = 0;
    for (let round = 0; round < 4000; round++) {
      const text = Buffer.from(randomJson(random, between(random, 0, 5)), "utf8");
      expect(scanJson(text), text.toString()).toBeDefined();
      expect(parses(text)).toBe(true);
      for (let m = 0; m < 5; m++) {
        const mutant = mutate(random, text);
        if (!isUtf8(mutant)) continue;
        const accepted = parses(mutant);
        expect(scanJson(mutant) !== undefined, JSON.stringify(mutant.toString())).toBe(accepted);
        if (accepted) valid++;
        else invalid++;
      }
    }
    // Both sides were exercised, not only the refusals a mutation usually makes.
    expect(valid).toBeGreaterThan(1000);
    expect(invalid).toBeGreaterThan(1000);
  });

  it.each([
    ["empty text", ""],
    ["only whitespace", " \n"],
    ["a BOM", "\ufeff{}"],
    ["a non-breaking space between tokens", '{"a":\u00a01}'],
    ["a vertical tab", "{\u000b}"],
    ["a raw tab in a string", '{"a":"\t"}'],
    ["a raw NUL in a string", '{"a":"\u0000"}'],
    ["a leading zero", '{"a":01}'],
    ["a leading plus", '{"a":+1}'],
    ["a bare dot", '{"a":.5}'],
    ["an empty fraction", '{"a":1.}'],
    ["an empty exponent", '{"a":1e}'],
    ["a signed empty exponent", '{"a":1e+}'],
    ["hex", '{"a":0x10}'],
    ["a short unicode escape", '{"a":"\\u12"}'],
    ["an unknown escape", '{"a":"\\x41"}'],
    ["an unterminated string", '{"a":"b}'],
    ["a single quote", "{'a':1}"],
    ["a trailing comma", '{"a":1,}'],
    ["an array's trailing comma", "[1,]"],
    ["a missing colon", '{"a" 1}'],
    ["a key that is not a string", "{1:1}"],
    ["mismatched brackets", '{"a":[}]'],
    ["an unclosed object", '{"a":1'],
    ["two values", "{} {}"],
    ["a truncated literal", '{"a":tru}'],
    ["a capitalised literal", '{"a":True}'],
    ["NaN", '{"a":NaN}'],
    ["a comment", '{"a":1 /* x */}'],
    ["non-ASCII outside strings", '{"a":1é}'],
  ])("refuses %s, as JSON.parse does", (_name, text) => {
    const bytes = Buffer.from(text, "utf8");
    expect(parses(bytes)).toBe(false);
    expect(scanJson(bytes)).toBeUndefined();
  });

  it.each([
    ["escapes of every kind", String.raw`{"a":"\"\\\/\b\f\n\r\t\u00E9\uFFFF"}`],
    ["a lone surrogate escape", String.raw`{"a":"\ud800"}`],
    ["U+2028 and DEL raw in a string", '{"a":"\u2028\u007f"}'],
    ["numbers of every shape", "[0,-0,1.5,-2.25e-3,1E+2,1e400,12345678901234567890]"],
    ["whitespace of every kind", ' \t\r\n{ "a" :\r\n[ ] }\n '],
    ["a bare value", '"x"'],
    ["10,000 levels of nesting", `${"[".repeat(10_000)}${"]".repeat(10_000)}`],
  ])("accepts %s, as JSON.parse does", (_name, text) => {
    const bytes = Buffer.from(text, "utf8");
    expect(parses(bytes)).toBe(true);
    expect(scanJson(bytes)).toBeDefined();
  });

  it("reports the kind, depth, lone surrogates, large numbers and line breaks", () => {
    const text = String.raw`{"a":[{"b":"\ud83d\ude00\udc00"}],"n":1e300,"m":12e307,"k":1e-400}`;
    expect(scanJson(Buffer.from(text))).toEqual({
      kind: "object",
      depth: 3,
      loneSurrogate: text.indexOf(String.raw`\udc00`),
      largeNumbers: [text.indexOf("12e307"), text.indexOf("12e307") + 6],
      lineBreaks: false,
    });
    expect(scanJson(Buffer.from('[1,\r\n"x"]'))).toMatchObject({ kind: "array", lineBreaks: true });
    expect(scanJson(Buffer.from("null"))).toMatchObject({ kind: "null", depth: 0 });
    expect(scanJson(Buffer.from(" false"))).toMatchObject({ kind: "boolean" });
  });
});
