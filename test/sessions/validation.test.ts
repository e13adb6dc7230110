import { describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import { checkSessionId, SESSION_ID_RULE } from "../../src/session-id.js";
import {
  type MessageLimits,
  normalizeMessages as normalizeAll,
  normalizeMessage as normalizeBytes,
} from "../../src/sessions/validation.js";
import { bytesOf, textsOf } from "../helpers/message-bytes.js";

/** normalizeMessage on the UTF-8 bytes of `text`, answering text. */
function normalizeMessage(text: string, index: number): string {
  return normalizeBytes(Buffer.from(text, "utf8"), index).toString("utf8");
}

/** normalizeMessages on the UTF-8 bytes of `texts`, answering text. */
function normalizeMessages(texts: readonly string[], limits: MessageLimits): string[] {
  return textsOf(normalizeAll(bytesOf(texts), limits));
}

function rejection(action: () => unknown): SessionStoreError {
  try {
    action();
  } catch (error) {
    if (error instanceof SessionStoreError) return error;
    throw error;
  }
  throw new Error("expected a SessionStoreError");
}

describe("checkSessionId", () => {
  it.each(["a", "agent-7f3a", "A.b_c:d@e~f-g", "x".repeat(200), "a..b", "a."])(
    "accepts %j",
    (id) => {
      expect(() => checkSessionId(id)).not.toThrow();
    },
  );

  it.each([
    ["empty", ""],
    ["201 characters", "x".repeat(201)],
    ["parent path", "../x"],
    ["separator", "a/b"],
    ["backslash", "a\\b"],
    ["NUL", "a\u0000b"],
    ["leading dot", ".hidden"],
    ["dot dot", ".."],
    ["space", "a b"],
    ["newline", "a\nb"],
    ["non-ASCII", "caf\u00e9"],
  ])("rejects %s with INVALID_ARGUMENT naming the rule", (_name, id) => {
    const error = rejection(() => checkSessionId(id));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain(SESSION_ID_RULE);
  });
});

describe("normalizeMessage", () => {
  it("keeps valid objects byte for byte, escapes and big integers included", () => {
    const text = '{"n":12345678901234567890,"s":"\\u00e9 \\/ \u{1F600}","f":1.50}';
    expect(normalizeMessage(text, 0)).toBe(text);
  });

  it("turns CR and LF between tokens into spaces and changes nothing else", () => {
    expect(normalizeMessage('{\r\n  "a": [1,\n 2]\r}', 0)).toBe('{    "a": [1,  2] }');
  });

  it("leaves the request's bytes as they came when it turns CR/LF into spaces", () => {
    const sent = Buffer.from('{"a":\n1}');
    expect(normalizeBytes(sent, 0).toString()).toBe('{"a": 1}');
    expect(sent.toString()).toBe('{"a":\n1}');
  });

  it.each([
    ["invalid JSON", '{"a":', "not valid JSON"],
    ["an array", "[1,2]", "JSON array"],
    ["a string", '"x"', "JSON string"],
    ["a number", "42", "JSON number"],
    ["null", "null", "JSON null"],
    ["empty text", "", "not valid JSON"],
    ["two objects", '{"a":1}{"b":2}', "not valid JSON"],
  ])("rejects %s, naming the message and what to fix", (_name, text, reason) => {
    const error = rejection(() => normalizeMessage(text, 3));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain("message 3");
    expect(error.message).toContain(reason);
    expect(error.message).toContain("each message must be one JSON object");
  });

  it.each([
    ["a bare word", '{"a":SECRET-BODY}', "an unexpected character or word"],
    ["a misspelt literal", '{"a":trueSECRET}', "in JSON at position"],
    ["a trailing comma", '{"SECRET":1,}', "in JSON at position 12"],
    ["a single-quoted key", "{'SECRET':1}", "in JSON at position 1"],
    ["a cut string", '{"a":"SECRET', "in JSON at position"],
    ["text after the object", '{"a":1} SECRET', "after JSON at position 8"],
  ])("says why %s is not JSON without quoting the message", (_name, text, reason) => {
    const error = rejection(() => normalizeMessage(text, 0));
    expect(error.message).toContain(reason);
    expect(error.message).not.toContain("SECRET");
  });
});

describe("normalizeMessages", () => {
  const limits = { maxMessageBytes: 1000, maxRequestMessages: 3 };
  const nested = (depth: number, inner = "") =>
    `${"[".repeat(depth - 1)}${inner}${"]".repeat(depth - 1)}`;

  it("accepts 127 levels of nesting (serde_json's limit) and refuses 128", () => {
    const deepest = `{"a":${nested(127)}}`;
    expect(normalizeMessages([deepest], { ...limits, maxMessageBytes: 10_000 })).toEqual([deepest]);
    const error = rejection(() =>
      normalizeMessages([`{"a":${nested(128)}}`], { ...limits, maxMessageBytes: 10_000 }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain("deeper than 127 levels");
  });

  it("does not count brackets inside strings, escaped quotes included", () => {
    const brackets = `{"s":"${"[{".repeat(300)}\\"${"[".repeat(300)}","t":[1]}`;
    expect(normalizeMessages([brackets], { ...limits, maxMessageBytes: 10_000 })).toEqual([
      brackets,
    ]);
    const afterEscapedBackslash = `{"s":"\\\\",${'"k":'.repeat(1)}${nested(129, "1")}}`;
    expect(() =>
      normalizeMessages([afterEscapedBackslash], { ...limits, maxMessageBytes: 10_000 }),
    ).toThrow("deeper than 127 levels");
  });

  it("refuses a message over the byte limit and too many messages with RESOURCE_EXHAUSTED", () => {
    const big = `{"s":"${"\u00e9".repeat(500)}"}`; // 500 characters, 1009 UTF-8 bytes
    const tooBig = rejection(() => normalizeMessages([big], limits));
    expect(tooBig.code).toBe(Code.ResourceExhausted);
    expect(tooBig.message).toContain("--max-message-bytes");
    const tooMany = rejection(() => normalizeMessages(["{}", "{}", "{}", "{}"], limits));
    expect(tooMany.code).toBe(Code.ResourceExhausted);
    expect(tooMany.message).toContain("--max-request-messages");
  });
});

describe("normalizeMessages: what motosan's reader (serde_json) refuses", () => {
  const limits = { maxMessageBytes: 1 << 20, maxRequestMessages: 10 };
  const raw = String.raw;

  it.each([
    ["a lone leading escape", raw`{"s":"\ud800"}`, "at byte 6"],
    ["a lone trailing escape", raw`{"s":"\uDFFF"}`, "at byte 6"],
    ["a pair escaped in reverse", raw`{"s":"\ude00\ud83d"}`, "at byte 6"],
    ["a leading escape before a BMP escape", raw`{"s":"\ud83d\u0041"}`, "at byte 6"],
    ["a leading escape before another escape", raw`{"s":"\ud83d\n"}`, "at byte 6"],
    ["a lone escape after a pair", raw`{"s":"\ud83d\ude00\udc00"}`, "at byte 18"],
    ["a lone escape in a key", raw`{"\udbff":1}`, "at byte 2"],
    ["a lone escape after an escaped backslash", raw`{"s":"\\\ud800"}`, "at byte 8"],
    ["a lone escape after non-ASCII text", raw`{"é":"\ud800"}`, "at byte 7"],
  ])("refuses %s with INVALID_ARGUMENT, saying where and what to send", (_name, text, where) => {
    const error = rejection(() => normalizeMessages(['{"fine":1}', text], limits));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain(`message 1 holds a lone UTF-16 surrogate escape (${where})`);
    expect(error.message).toContain("escape a whole surrogate pair");
    expect(error.message).toContain("or send the character itself");
  });

  it.each([
    ["an escaped pair", raw`{"s":"\ud83d\ude00"}`],
    ["pairs in mixed case, one after another", raw`{"s":"\uD83D\uDe00\ud83e\udd80"}`],
    ["an escaped backslash before text like an escape", raw`{"s":"\\ud800","t":"\\\\udc00"}`],
    ["the characters around the surrogates", raw`{"s":"\ud7ff\ue000\uffff"}`],
    ["an escaped NUL", raw`{"s":"\u0000"}`],
    ["the character itself", '{"s":"🦀"}'],
  ])("keeps %s byte for byte", (_name, text) => {
    expect(normalizeMessages([text], limits)).toEqual([text]);
  });

  it.each([
    ["1e999", '{"n":1e999}', "at byte 5, 5 characters long"],
    ["-1e400", '{"a":[0,-1e400]}', "at byte 8, 6 characters long"],
    ["1.8e308", '{"n":1.8e308}', "at byte 5, 7 characters long"],
    // JSON.parse rounds this to f64::MAX; serde_json's arithmetic overflows.
    ["f64::MAX rounded up", '{"n":1.7976931348623158e308}', "at byte 5, 22 characters long"],
    ["a 400-digit integer", `{"n":${"9".repeat(400)}}`, "at byte 5, 400 characters long"],
    ["an exponent past i32", '{"n":1e2147483648}', "at byte 5, 12 characters long"],
    [
      "after a string holding 1e999",
      raw`{"s":"1e999 \"","n":1e999}`,
      "at byte 20, 5 characters long",
    ],
  ])("refuses %s with INVALID_ARGUMENT, saying where the number is", (_name, text, which) => {
    const error = rejection(() => normalizeMessages([text], limits));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain(
      `message 0 holds a number that does not fit a 64-bit float (${which})`,
    );
    expect(error.message).toContain("send it as a string");
  });

  it.each([
    ["f64::MAX as printed", '{"n":1.7976931348623157e308}'],
    ["1.5e308", '{"n":-1.5e308}'],
    ["a 309-digit integer (1e308)", `{"n":1${"0".repeat(308)}}`],
    ["a 400-digit mantissa with exponent -300", `{"n":1${"0".repeat(399)}e-300}`],
    ["1e-400, which underflows to zero", '{"n":1e-400}'],
    ["zero with any exponent", '{"n":[0e999,-0.0e+99999999999]}'],
    ["integers past u64, digits intact", '{"n":[18446744073709551616,-9223372036854775809]}'],
    ["-0", '{"n":-0}'],
    ["huge numbers inside strings", '{"s":"1e999","1e999":"9e308"}'],
  ])("keeps %s byte for byte", (_name, text) => {
    expect(normalizeMessages([text], limits)).toEqual([text]);
  });

  it("checks nesting before strings and numbers, and still keeps CR/LF out of stored lines", () => {
    const deepAndLone = `{"s":"\\ud800","a":${"[".repeat(130)}${"]".repeat(130)}}`;
    expect(() => normalizeMessages([deepAndLone], limits)).toThrow("deeper than 127 levels");
    expect(normalizeMessages(['{"n":\r\n1e308}'], limits)).toEqual(['{"n":  1e308}']);
  });
});
