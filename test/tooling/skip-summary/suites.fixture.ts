import { describe, expect, it } from "vitest";
import { skipWithReason } from "../../helpers/skipped-suites.js";

describe(
  "a suite whose tool is missing",
  skipWithReason("frobnicate not found; install it"),
  () => {
    it("needs the tool", () => expect.unreachable());

    describe("a suite inside it", () => {
      it("needs it too", () => expect.unreachable());
    });
  },
);

describe("a suite that has what it needs", skipWithReason(undefined), () => {
  it("runs", () => expect(true).toBe(true));
});
