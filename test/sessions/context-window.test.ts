import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ContextWindow, type WindowRule } from "../../src/sessions/context-window.js";
import { DIALECTS, type Dialect, detectDialect, shapeOf } from "../../src/sessions/dialects.js";
import { REPOSITORY } from "../helpers/repository.js";

/** A transcript in each API's own format (see test/fixtures/dialects/README.md). */
function transcript(dialect: Dialect): string[] {
  const text = readFileSync(join(REPOSITORY, "test/fixtures/dialects", `${dialect}.jsonl`), "utf8");
  return text.split("\n").filter((line) => line !== "");
}

/** What each transcript holds: where people's turns start, and the calls and their results. */
const EXPECTED: Record<
  Dialect,
  {
    turns: number[];
    calls: Record<number, string[]>;
    results: Record<number, string[]>;
    dangling: string[];
  }
> = {
  "openai-chat": {
    turns: [1, 5, 10],
    calls: { 2: ["call_12345xyz"], 6: ["call_67890abc", "call_99999def"], 11: ["call_booking01"] },
    results: { 3: ["call_12345xyz"], 7: ["call_67890abc"], 8: ["call_99999def"] },
    dangling: ["call_booking01"],
  },
  "openai-responses": {
    turns: [0, 5, 11],
    calls: {
      2: ["call_12345xyz"],
      6: ["call_67890abc"],
      7: ["call_99999def"],
      12: ["call_booking01"],
    },
    results: { 3: ["call_12345xyz"], 8: ["call_67890abc"], 9: ["call_99999def"] },
    dangling: ["call_booking01"],
  },
  anthropic: {
    turns: [0, 4, 8],
    calls: {
      1: ["toolu_01Nu82nfXTcUufvPqZ4VHJmv"],
      5: ["toolu_01A09q90qw90lq917835lq9", "toolu_01B7cT8fR2dW3mHnLpQ4kX5z"],
      9: ["toolu_01CqVt3ZrLx8hKbNmPo9sW2y"],
    },
    results: {
      2: ["toolu_01Nu82nfXTcUufvPqZ4VHJmv"],
      6: ["toolu_01A09q90qw90lq917835lq9", "toolu_01B7cT8fR2dW3mHnLpQ4kX5z"],
    },
    dangling: ["toolu_01CqVt3ZrLx8hKbNmPo9sW2y"],
  },
  gemini: {
    turns: [0, 4, 8],
    calls: { 1: ["name:get_current_weather"], 5: ["adk-7a2f", "adk-9c1d"], 9: ["adk-b00k"] },
    results: { 2: ["name:get_current_weather"], 6: ["adk-7a2f", "adk-9c1d"] },
    dangling: ["adk-b00k"],
  },
  motosan: {
    turns: [1, 5],
    calls: { 2: ["call_1"], 6: ["call_2"] },
    results: { 3: ["call_1"] },
    dangling: ["call_2"],
  },
};

/** Offers `messages` newest first, as Load does, and returns the window chosen. */
function choose(messages: string[], rule: Partial<WindowRule>) {
  const window = new ContextWindow(
    { maxBytes: 0, maxMessages: 0, wholeTurns: false, ...rule },
    messages.length,
  );
  for (let seq = messages.length - 1; seq >= 0; seq--) {
    if (!window.offer(seq, Buffer.from(messages[seq] as string))) break;
  }
  return window.result();
}

/**
 * The rule written out plainly, from the front: the earliest start within the bytes that is a
 * person's turn and after which every result answers a call made after it too.
 */
function oracleStart(messages: string[], maxBytes: number): number {
  const bytes = messages.map((message) => Buffer.byteLength(message));
  for (let start = 0; start < messages.length; start++) {
    const size = bytes.slice(start).reduce((sum, n) => sum + n, 0);
    if (size > maxBytes || !shapeOf(messages[start] as string).startsTurn) continue;
    const made = new Set<string>();
    let whole = true;
    for (const message of messages.slice(start)) {
      const shape = shapeOf(message);
      if (shape.results.some((id) => !made.has(id))) whole = false;
      for (const id of shape.calls) made.add(id);
    }
    if (whole) return start;
  }
  return messages.length;
}

describe.each(DIALECTS)("the %s dialect", (dialect) => {
  const messages = transcript(dialect);
  const expected = EXPECTED[dialect];

  it("is recognised in every message of its transcript, or read the same as the dialect it is taken for", () => {
    const distinct = messages.filter((message) => detectDialect(JSON.parse(message)) === dialect);
    expect(distinct.length).toBeGreaterThanOrEqual(messages.length / 2);
    for (const message of messages) {
      // A plain {"role":"user","content":"..."} is the same in several dialects.
      const detected = detectDialect(JSON.parse(message));
      expect(shapeOf(message, detected), message).toEqual(shapeOf(message, dialect));
    }
  });

  it("says where turns start and which calls and results each message holds", () => {
    const shapes = messages.map((message) => shapeOf(message));
    expect(shapes.flatMap((shape, seq) => (shape.startsTurn ? [seq] : []))).toEqual(expected.turns);
    const byMessage = (pick: (shape: (typeof shapes)[number]) => string[]) =>
      Object.fromEntries(
        shapes.flatMap((shape, seq) => (pick(shape).length > 0 ? [[seq, pick(shape)]] : [])),
      );
    expect(byMessage((shape) => shape.calls)).toEqual(expected.calls);
    expect(byMessage((shape) => shape.results)).toEqual(expected.results);
    // The same when the session's label fixes the dialect.
    expect(messages.map((message) => shapeOf(message, dialect))).toEqual(shapes);
  });

  it("starts a whole-turns window at the earliest turn that fits, for every byte budget", () => {
    const total = messages.reduce((sum, message) => sum + Buffer.byteLength(message), 0);
    for (let maxBytes = 1; maxBytes <= total + 1; maxBytes += 7) {
      const chosen = choose(messages, { maxBytes, wholeTurns: true });
      expect(chosen.start, `maxBytes ${maxBytes}`).toBe(oracleStart(messages, maxBytes));
    }
  });

  it("reports the calls the window holds that have no result (an interrupted turn)", () => {
    expect(choose(messages, { wholeTurns: true }).danglingCallIds).toEqual(expected.dangling);
    const lastTurn = expected.turns.at(-1) as number;
    const lastTurnBytes = messages
      .slice(lastTurn)
      .reduce((sum, m) => sum + Buffer.byteLength(m), 0);
    expect(choose(messages, { wholeTurns: true, maxBytes: lastTurnBytes })).toEqual({
      start: lastTurn,
      danglingCallIds: expected.dangling,
    });
  });

  it("without whole turns, takes the newest messages within the bounds, wherever they start", () => {
    expect(choose(messages, { maxMessages: 2 }).start).toBe(messages.length - 2);
    const lastBytes = Buffer.byteLength(messages.at(-1) as string);
    expect(choose(messages, { maxBytes: lastBytes }).start).toBe(messages.length - 1);
    expect(choose(messages, { maxBytes: lastBytes - 1 }).start).toBe(messages.length);
  });
});

describe("windows over messages of no known shape", () => {
  it("counts bytes as stored (UTF-8) and never starts a whole-turns window in them", () => {
    const messages = ['{"x":"é"}', '{"y":1}'];
    expect(choose(messages, { maxBytes: Buffer.byteLength(messages.join("")) }).start).toBe(0);
    expect(choose(messages, { maxBytes: 9 }).start).toBe(1);
    expect(choose(messages, { wholeTurns: true })).toEqual({ start: 2, danglingCallIds: [] });
  });

  it("refuses a start after which a result answers a call made before it", () => {
    // A late result of a call from an earlier turn: the window must take that turn too.
    const messages = [
      '{"role":"user","content":"a"}',
      '{"role":"assistant","tool_calls":[{"id":"c1"}]}',
      '{"role":"user","content":"b"}',
      '{"role":"tool","tool_call_id":"c1","content":"late"}',
    ];
    expect(choose(messages, { wholeTurns: true }).start).toBe(0);
    expect(choose(messages, { wholeTurns: true, maxBytes: 90 }).start).toBe(4);
  });
});
