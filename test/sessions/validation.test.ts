import { describe, expect, it } from "vitest";
import { Code, SessionStoreError } from "../../src/errors.js";
import {
  checkSessionId,
  normalizeMessage,
  SESSION_ID_RULE,
} from "../../src/sessions/validation.js";

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
