import { describe, expect, it } from "vitest";
import {
  applyLabelChange,
  checkLabelChange,
  isLabelKey,
  MAX_LABELS,
  matchesSelector,
  parseSelector,
} from "../src/labels.js";

describe("labels", () => {
  it("take keys as Kubernetes does, with an optional DNS prefix", () => {
    for (const key of [
      "user",
      "a",
      "app.kubernetes.io/name",
      "sessionstore.dev/dialect",
      "x_y-z.9",
    ]) {
      expect(isLabelKey(key), key).toBe(true);
    }
    for (const key of [
      "",
      "-a",
      "a-",
      "UPPER.example/x",
      "a/b/c",
      "x".repeat(64),
      "/name",
      "sp ace",
    ]) {
      expect(isLabelKey(key), key).toBe(false);
    }
  });

  it("refuse a bad key or value, naming it, and remove a label set to empty", () => {
    expect(() => checkLabelChange({ "bad key": "v" })).toThrow(/label key "bad key"/);
    expect(() => checkLabelChange({ user: "not ok!" })).toThrow(/value of label user/);
    expect(applyLabelChange({ user: "alice", env: "prod" }, { env: "", team: "a" })).toEqual({
      team: "a",
      user: "alice",
    });
  });

  it("are bounded in number and size", () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, "v"]),
    );
    expect(() => applyLabelChange({}, many)).toThrow(/at most 64 labels/);
    const big = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, "v".repeat(63)]));
    expect(() => applyLabelChange({}, { ...big, ...big })).not.toThrow();
    const huge = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [
        `${"p".repeat(60)}.example/${"k".repeat(60)}${i}`,
        "v".repeat(63),
      ]),
    );
    expect(() => applyLabelChange({}, huge)).toThrow(/at most 8192 bytes/);
  });
});

describe("label selectors", () => {
  const labels = { user: "alice", env: "staging", team: "ml" };

  it.each([
    ["", true],
    ["user=alice", true],
    ["user==alice", true],
    ["user=bob", false],
    ["user=alice,env!=prod,team", true],
    ["user=alice,env!=staging", false],
    ["missing!=x", true],
    ["!missing", true],
    ["!team", false],
    ["env in (prod, staging)", true],
    ["env notin (prod,staging)", false],
    ["team,user in (alice),!x", true],
  ])("%j matches %s", (selector, expected) => {
    expect(matchesSelector(labels, parseSelector(selector))).toBe(expected);
  });

  it.each(["=alice", "user=a b", "env in prod", "!", ",", "user=alice,", "a/b/c"])(
    "refuses %j with INVALID_ARGUMENT and an example",
    (selector) => {
      expect(() => parseSelector(selector)).toThrow(/label_selector: .* e\.g\. user=alice/);
    },
  );

  it("takes an empty value as a value, which no stored label has", () => {
    expect(matchesSelector(labels, parseSelector("user="))).toBe(false);
    expect(matchesSelector(labels, parseSelector("user!="))).toBe(true);
  });

  it("refuses a selector longer than any session's labels could need, before parsing it", () => {
    expect(() => parseSelector(`user=${"a".repeat(20_000)}`)).toThrow(/at most 16384/);
  });
});
