import { describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import { checkSessionId, SESSION_ID_RULE } from "../../src/session-id.js";
import { normalizeMessage, normalizeMessages } from "../../src/sessions/validation.js";

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

  it("accepts deeply nested objects", () => {
    const deep = `{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    expect(normalizeMessage(deep, 0)).toBe(deep);
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
