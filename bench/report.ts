import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./machine.js";

export type Unit = "msgs/s" | "ms" | "s" | "MB" | "msgs" | "%";

/** A target on a figure: on its ratio to the baseline, or on its value itself. */
export interface Target {
  on: "ratio" | "value";
  op: ">=" | "<=";
  limit: number;
}

/** One line of the table: a figure (median of the runs) next to its baseline from the same run. */
export interface Row {
  scenario: number;
  figure: string;
  unit: Unit;
  /** Per run; the figure is their median. */
  runs: number[];
  value: number;
  baseline?: { label: string; runs: number[]; value: number };
  /** value / baseline.value */
  ratio?: number;
  target?: Target;
  pass?: boolean;
  note?: string;
}

export interface Report {
  date: string;
  mode: "full" | "quick";
  /** The commit of the server measured ("+changes": src/ or gen/ differed from it). */
  commit: string;
  machine: Machine;
  /** What was run and how (sizes, runs), for the record. */
  settings: unknown;
  durationSeconds: number;
  rows: Row[];
  skipped: string[];
}

/** Fills in ratio and pass from value, baseline and target. */
export function judge(row: Row): Row {
  const ratio = row.baseline ? row.value / row.baseline.value : undefined;
  const measured = row.target?.on === "ratio" ? ratio : row.value;
  let pass: boolean | undefined;
  if (row.target && measured !== undefined && Number.isFinite(measured)) {
    pass = row.target.op === ">=" ? measured >= row.target.limit : measured <= row.target.limit;
  }
  return {
    ...row,
    ...(ratio === undefined ? {} : { ratio }),
    ...(pass === undefined ? {} : { pass }),
  };
}

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return "n/a";
  switch (unit) {
    case "msgs/s":
      return `${Math.round(value).toLocaleString("en-US")} msgs/s`;
    case "ms":
      return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
    case "s":
      return `${value.toFixed(2)} s`;
    case "MB":
      return `${value.toFixed(1)} MB`;
    case "msgs":
      return value.toFixed(1);
    case "%":
      return `${value.toFixed(1)}%`;
  }
}

function formatTarget(target: Target, unit: Unit): string {
  const op = target.op === ">=" ? "≥" : "≤";
  return target.on === "ratio"
    ? `${op} ${target.limit}×`
    : `${op} ${formatValue(target.limit, unit).replace(/\.0+ /, " ")}`;
}

/** The markdown table of a report, with its header. */
export function renderReport(report: Report): string {
  const { machine } = report;
  const lines = [
    `sessionstore bench, ${report.mode} mode, ${report.date} (${Math.round(report.durationSeconds)} s), commit ${report.commit}`,
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; ` +
      `load average at start ${machine.loadAverage.join(", ")}`,
    `Node ${machine.node}, @grpc/grpc-js ${machine.grpcJs}${machine.peers ? `; ${machine.peers.join("; ")}` : ""}`,
    "",
    "| # | figure | median | baseline | baseline median | ratio | target | result |",
    "|---|--------|-------:|----------|----------------:|------:|--------|--------|",
  ];
  for (const row of report.rows) {
    lines.push(
      `| ${[
        row.scenario,
        row.figure,
        formatValue(row.value, row.unit),
        row.baseline?.label ?? "",
        row.baseline ? formatValue(row.baseline.value, row.unit) : "",
        row.ratio === undefined ? "" : `${row.ratio.toFixed(2)}×`,
        row.target ? formatTarget(row.target, row.unit) : "",
        row.pass === undefined ? "" : row.pass ? "PASS" : "**MISS**",
      ].join(" | ")} |`,
    );
  }
  const notes = report.rows.filter((row) => row.note);
  if (notes.length > 0) {
    lines.push("");
    for (const row of notes) lines.push(`- (${row.scenario}) ${row.figure}: ${row.note}`);
  }
  for (const skipped of report.skipped) lines.push(`- skipped: ${skipped}`);
  if (report.mode === "quick") {
    lines.push("", "Quick mode: small sizes and one run; it checks the harness, not the targets.");
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Writes the report as JSON into `directory`: `<timestamp>-<mode>[-partial].json` always (partial:
 * some scenarios, other run counts or profiling), and `latest.json` when `latest` (a complete
 * full run: the one the README shows).
 */
export function writeReport(
  report: Report,
  directory: string,
  options: { partial: boolean; latest: boolean; kind?: string },
): string {
  mkdirSync(directory, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const stamp = report.date.replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
  const kind = options.kind ? `-${options.kind}` : "";
  const path = join(
    directory,
    `${stamp}-${report.mode}${kind}${options.partial ? "-partial" : ""}.json`,
  );
  writeFileSync(path, json);
  if (options.latest) writeFileSync(join(directory, `latest${kind}.json`), json);
  return path;
}
