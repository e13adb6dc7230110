import Table from "cli-table3";
import pc from "picocolors";

export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Where a command writes and how: colour and tables for a person on a terminal, plain text when
 * piped (or NO_COLOR), one JSON document (or JSON lines, for streams) with --json.
 */
export interface Output {
  json: boolean;
  /** Whether stdout is a terminal. */
  tty: boolean;
  /** Whether stdin and stderr are a terminal (a question can be asked). */
  interactive: boolean;
  color: Colors;
  out(text: string): void;
  err(text: string): void;
  /** A JSON document on its own line. */
  printJson(value: unknown): void;
}

export function outputFor(json: boolean, env: NodeJS.ProcessEnv = process.env): Output {
  const tty = process.stdout.isTTY === true;
  const colors = tty && !("NO_COLOR" in env && env.NO_COLOR !== "") && env.TERM !== "dumb";
  return {
    json,
    tty,
    interactive: process.stdin.isTTY === true && process.stderr.isTTY === true,
    color: pc.createColors(colors),
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    printJson: (value) => void process.stdout.write(`${JSON.stringify(value)}\n`),
  };
}

/** Rows as a table: boxed on a terminal, aligned columns without borders when piped. */
export function renderTable(output: Output, head: string[], rows: string[][]): string {
  const table = new Table({
    head: head.map((title) => output.color.bold(title)),
    style: {
      head: [],
      border: [],
      compact: true,
      "padding-left": output.tty ? 1 : 0,
      "padding-right": output.tty ? 1 : 2,
    },
    ...(output.tty
      ? {}
      : {
          chars: {
            top: "",
            "top-mid": "",
            "top-left": "",
            "top-right": "",
            bottom: "",
            "bottom-mid": "",
            "bottom-left": "",
            "bottom-right": "",
            left: "",
            "left-mid": "",
            mid: "",
            "mid-mid": "",
            right: "",
            "right-mid": "",
            middle: "",
          },
        }),
  });
  table.push(...rows);
  // Borderless rows keep the padding after the last column: trim it.
  return `${table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n")}\n`;
}

const UNITS: [number, string][] = [
  [365 * 24 * 3600_000, "y"],
  [30 * 24 * 3600_000, "mo"],
  [24 * 3600_000, "d"],
  [3600_000, "h"],
  [60_000, "m"],
  [1000, "s"],
];

/** `ms` (a Unix time) relative to `now`: "5m ago", "just now". */
export function relativeTime(ms: number, now = Date.now()): string {
  if (ms === 0) return "-";
  const age = now - ms;
  if (age < 1000) return "just now";
  for (const [size, unit] of UNITS) {
    if (age >= size) return `${Math.floor(age / size)}${unit} ago`;
  }
  return "just now";
}

/** Labels as `k=v,k2=v2` (the selector syntax), sorted by key. */
export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}
