import { join } from "node:path";
import { judge, type Row, type Target, type Unit } from "./report.js";
import { median } from "./stats.js";

/** Sizes of every scenario, per mode. */
export interface Sizes {
  /** Measured runs per figure (after a warm-up). */
  runs: number;
  /** Each run of the Go load client: a warm-up, then the measured window. */
  sustained: { warmupMs: number; durationMs: number };
  /** (1): streams of 100-message requests. */
  streaming: { streams: number; requestsPerStream: number; window: number };
  /** (2): streams of 1-message requests. */
  singleMessage: { streams: number; requestsPerStream: number; window: number };
  /** (3): one stream per session, sync requests. */
  durable: {
    sessions: number;
    requestsPerStream: number;
    messagesPerRequest: number;
    window: number;
  };
  /** (4)-(6): the long session, and the work done on it per run. */
  longSession: {
    messages: number;
    shortMessages: number;
    flushes: number;
    messagesPerFlush: number;
    lastCalls: number;
  };
  /** (7): data directories with many and with few sessions. */
  manySessions: { sessions: number; fewSessions: number; messagesEach: number; listCalls: number };
  /** (8): sessions holding buffered messages. */
  buffered: { sessions: number; messagesEach: number; streams: number };
  /** (12)-(14): a long chat for windows and forks, and labelled sessions to list. */
  agent: {
    messages: number;
    windowBytes: number;
    calls: number;
    forks: number;
    sessions: number;
    fewSessions: number;
    /** Sessions of the user the listing selects, among `sessions` and among `fewSessions`. */
    matching: number;
    listCalls: number;
  };
}

export const SIZES: Record<"full" | "quick", Sizes> = {
  full: {
    runs: 5,
    sustained: { warmupMs: 1_000, durationMs: 3_000 },
    streaming: { streams: 4, requestsPerStream: 1_000, window: 16 },
    singleMessage: { streams: 4, requestsPerStream: 15_000, window: 64 },
    durable: { sessions: 64, requestsPerStream: 100, messagesPerRequest: 10, window: 8 },
    longSession: {
      messages: 1_000_000,
      shortMessages: 100,
      flushes: 50,
      messagesPerFlush: 10,
      lastCalls: 50,
    },
    manySessions: { sessions: 100_000, fewSessions: 100, messagesEach: 3, listCalls: 50 },
    buffered: { sessions: 10_000, messagesEach: 10, streams: 4 },
    agent: {
      messages: 1_000_000,
      windowBytes: 64 * 1024,
      calls: 20,
      forks: 20,
      sessions: 100_000,
      fewSessions: 100,
      matching: 50,
      listCalls: 50,
    },
  },
  quick: {
    runs: 1,
    sustained: { warmupMs: 250, durationMs: 1_000 },
    streaming: { streams: 4, requestsPerStream: 50, window: 16 },
    singleMessage: { streams: 4, requestsPerStream: 500, window: 64 },
    durable: { sessions: 64, requestsPerStream: 4, messagesPerRequest: 10, window: 8 },
    longSession: {
      messages: 20_000,
      shortMessages: 100,
      flushes: 5,
      messagesPerFlush: 10,
      lastCalls: 10,
    },
    manySessions: { sessions: 2_000, fewSessions: 100, messagesEach: 3, listCalls: 10 },
    buffered: { sessions: 500, messagesEach: 10, streams: 4 },
    agent: {
      messages: 20_000,
      windowBytes: 64 * 1024,
      calls: 3,
      forks: 3,
      sessions: 2_000,
      fewSessions: 100,
      matching: 50,
      listCalls: 3,
    },
  },
};

/** What every scenario gets. */
export interface BenchContext {
  mode: "full" | "quick";
  sizes: Sizes;
  /** Scratch space for data directories; removed at the end. */
  workDir: string;
  payloads: readonly string[];
  /** Versions of the peers that ran (Redis, nats-server, PostgreSQL), for the table's header. */
  peerVersions: Set<string>;
  /** Whether strace can count the server's fsyncs. */
  strace: boolean;
  /** When set, every sessionstore server writes a CPU profile under it, per scenario. */
  cpuProfileRoot: string | undefined;
  /** Progress, on stderr. */
  log(message: string): void;
  /** Parts not measured, and why (shown under the table). */
  skipped: string[];
  /** Work shared by scenarios (a dataset, a reference rate), done once on first use. */
  once<T>(key: string, make: () => Promise<T>): Promise<T>;
}

export function cpuProfileDir(context: BenchContext, scenario: number): string | undefined {
  return context.cpuProfileRoot && join(context.cpuProfileRoot, `scenario-${scenario}`);
}

/** A scenario of issue 7: it runs its figures and their baselines, and returns its rows. */
export interface Scenario {
  id: number;
  title: string;
  run(context: BenchContext): Promise<Row[]>;
}

/** A judged row from the runs of a figure and of its baseline. */
export function row(
  scenario: number,
  figure: string,
  unit: Unit,
  runs: number[],
  options: { baseline?: { label: string; runs: number[] }; target?: Target; note?: string } = {},
): Row {
  const { baseline, target, note } = options;
  return judge({
    scenario,
    figure,
    unit,
    runs,
    value: median(runs),
    ...(baseline ? { baseline: { ...baseline, value: median(baseline.runs) } } : {}),
    ...(target ? { target } : {}),
    ...(note ? { note } : {}),
  });
}

/** `count` ids `<prefix>-<index>`. */
export function sessionIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
}

export const MB = 1024 * 1024;
