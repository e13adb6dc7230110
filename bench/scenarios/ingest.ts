import { cpus } from "node:os";
import { join } from "node:path";
import { type BenchContext, row, type Scenario } from "../context.js";
import { formatCpuUse, medianCpuUse } from "../cpu.js";
import { countBetween, measureFdatasync, readFsyncTrace } from "../fsyncs.js";
import { benchProgram, type LoadRun, type LoadShape, measureLoad } from "../loadgen.js";
import { MESSAGE_BYTES } from "../payloads.js";
import {
  type Contender,
  echo,
  nats,
  postgres,
  type RunningPeer,
  redis,
  sessionstore,
} from "../peers.js";
import type { Row, Target } from "../report.js";
import { freshDir } from "../sessionstore.js";
import { median, percentile } from "../stats.js";

/** A load's shape; each contender brings its own `sync`. */
type Shape = Omit<LoadShape, "sync">;

/** (1): 100 messages per request, 8 sessions, 16 requests in flight each. */
const BATCHED: Shape = { streams: 8, batch: 100, window: 16 };
/** (2): 1 message per request, 8 sessions, 16 in flight each. */
const SINGLE: Shape = { streams: 8, batch: 1, window: 16 };
/** (15): 64 agents, each one durable message at a time. */
const AGENTS: Shape = { streams: 64, batch: 1, window: 1 };

/** A contender's runs and, once it stopped, its log lines. */
interface Measured {
  contender: Contender;
  runs: LoadRun[];
  logs: Record<string, unknown>[];
}

const LOADGEN_MISSING =
  "the Go load client is not built (scripts/setup-bench.sh builds bench/bin/loadgen with Go)";

/**
 * Starts `contender`, runs the load client against it, stops it. A peer that cannot run here
 * (a missing tool) or fails is skipped with a note; sessionstore's failures fail the bench.
 */
async function measure(
  context: BenchContext,
  scenario: number,
  shape: Shape,
  contender: Contender,
): Promise<Measured | undefined> {
  const program = benchProgram("loadgen");
  if (!program) return undefined;
  let started: RunningPeer | string | undefined;
  let runs: LoadRun[] | undefined;
  try {
    started = await contender.start(context);
    if (typeof started !== "string") {
      runs = await measureLoad(context, program, contender.label, started.peer, {
        ...shape,
        sync: contender.sync,
      });
    }
  } catch (error) {
    if (typeof started === "object") await started.stop();
    if (contender.required) throw error;
    started = `failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (typeof started === "string" || !runs) {
    context.skipped.push(`(${scenario}) ${contender.label}: ${started}`);
    return undefined;
  }
  return { contender, runs, logs: await started.stop() };
}

async function measureAll(
  context: BenchContext,
  scenario: number,
  shape: Shape,
  contenders: readonly Contender[],
): Promise<(Measured | undefined)[]> {
  if (!benchProgram("loadgen")) {
    context.skipped.push(`(${scenario}) every row: ${LOADGEN_MISSING}`);
    return contenders.map(() => undefined);
  }
  const measured: (Measured | undefined)[] = [];
  for (const contender of contenders)
    measured.push(await measure(context, scenario, shape, contender));
  return measured;
}

/** (1)'s sessionstore buffered runs: measured once, shared with (3). */
function batchedBuffered(context: BenchContext): Promise<Measured | undefined> {
  return context.once("ingest-batched-buffered", () =>
    measure(context, 1, BATCHED, sessionstore(1, false)),
  );
}

const rates = (measured: Measured) => measured.runs.map((run) => run.messagesPerSecond);

/** The figure of `ours` next to `baseline`, saying what each persisted; none if one is missing. */
function versus(
  scenario: number,
  figure: string,
  ours: Measured | undefined,
  baseline: Measured | undefined,
  options: { target?: Target; note?: string } = {},
): Row[] {
  if (!ours || !baseline) return [];
  const persisted = `${ours.contender.label} persists ${ours.contender.persisted}; ${baseline.contender.label}: ${baseline.contender.persisted}`;
  return [
    row(scenario, figure, "msgs/s", rates(ours), {
      baseline: { label: baseline.contender.label, runs: rates(baseline) },
      ...(options.target ? { target: options.target } : {}),
      note: options.note ? `${options.note}; ${persisted}` : persisted,
    }),
  ];
}

/** The same for a latency percentile. */
function latency(
  scenario: number,
  p: 50 | 99,
  ours: Measured | undefined,
  baseline: Measured | undefined,
  target?: Target,
): Row[] {
  if (!ours || !baseline) return [];
  const value = (run: LoadRun) => (p === 50 ? run.p50Ms : run.p99Ms);
  return [
    row(scenario, `ack latency p${p}`, "ms", ours.runs.map(value), {
      baseline: { label: `${baseline.contender.label} p${p}`, runs: baseline.runs.map(value) },
      ...(target ? { target } : {}),
    }),
  ];
}

/** Who used how much CPU over the measured windows: that the load client was not the limit. */
function cpuNote(measured: readonly (Measured | undefined)[]): string {
  const parts = measured.flatMap((m) => {
    if (!m) return [];
    const peerCpu = m.runs.flatMap((run) => (run.peerCpu ? [run.peerCpu] : []));
    const client = `load client ${Math.round(median(m.runs.map((run) => run.clientCpu)) * 100)}%`;
    return [
      `${m.contender.label}: ${peerCpu.length > 0 ? `${formatCpuUse(medianCpuUse(peerCpu))}, ` : "(server CPU not shown), "}${client}`,
    ];
  });
  return `CPU per wall second over the measured windows (medians; 100% = one core of ${cpus().length}): ${parts.join("; ")}`;
}

export const batchedAppend: Scenario = {
  id: 1,
  title: "append, 100 messages per request, 8 sessions, 16 in flight each (Go load client)",
  async run(context) {
    const buffered = await batchedBuffered(context);
    const [sync, bare, redisEverysec, jetstream, pgOff, pgOn] = await measureAll(
      context,
      1,
      BATCHED,
      [
        sessionstore(1, true),
        echo,
        redis("everysec"),
        nats("default"),
        postgres(false),
        postgres(true),
      ],
    );
    return [
      ...versus(
        1,
        "append msgs/s, buffered vs the echo with the same HTTP/2 settings",
        buffered,
        bare,
        {
          target: { on: "ratio", op: ">=", limit: 0.7 },
          note: cpuNote([buffered, sync, bare, redisEverysec, jetstream, pgOff, pgOn]),
        },
      ),
      ...versus(1, "append msgs/s, buffered vs Redis AOF everysec", buffered, redisEverysec, {
        target: { on: "ratio", op: ">=", limit: 1.5 },
      }),
      ...versus(1, "append msgs/s, sync vs buffered", sync, buffered, {
        target: { on: "ratio", op: ">=", limit: 0.9 },
      }),
      ...versus(1, "append msgs/s, buffered vs NATS JetStream, default sync", buffered, jetstream),
      ...versus(
        1,
        "append msgs/s, buffered vs PostgreSQL, synchronous_commit off",
        buffered,
        pgOff,
      ),
      ...versus(1, "append msgs/s, sync vs PostgreSQL, synchronous_commit on", sync, pgOn),
    ];
  },
};

export const singleMessageAppend: Scenario = {
  id: 2,
  title: "append, 1 message per request, buffered, 8 sessions, 16 in flight each (Go load client)",
  async run(context) {
    const [buffered, bare, redisEverysec] = await measureAll(context, 2, SINGLE, [
      sessionstore(2, false),
      echo,
      redis("everysec"),
    ]);
    return [
      ...versus(
        2,
        "append msgs/s (1 per request) vs the echo with the same HTTP/2 settings",
        buffered,
        bare,
        {
          target: { on: "ratio", op: ">=", limit: 0.9 },
          note: cpuNote([buffered, bare, redisEverysec]),
        },
      ),
      ...versus(2, "append msgs/s (1 per request) vs Redis AOF everysec", buffered, redisEverysec),
    ];
  },
};

/**
 * The fsyncs per run: from strace's log when it ran, else undefined. The server's own counter
 * (logged when it closes) covers its whole life, so it only cross-checks.
 */
async function fsyncsPerRun(
  fsyncTrace: string | undefined,
  runs: readonly LoadRun[],
): Promise<number[] | undefined> {
  if (!fsyncTrace) return undefined;
  const calls = await readFsyncTrace(fsyncTrace);
  return runs.map((run) => countBetween(calls, run.startedAtEpochMs, run.endedAtEpochMs));
}

/** (3)'s rows on fsyncs: per fsync counted by strace or the server, and their latency. */
async function fsyncRows(
  context: BenchContext,
  durable: Measured,
  fsyncTrace: string | undefined,
  messagesPerRequest: number,
): Promise<Row[]> {
  const rows: Row[] = [];
  // The server's own count over its life (warm-ups included): fdatasyncs of session files.
  const stats = durable.logs.find((entry) =>
    String(entry.msg).startsWith("closed the data directory"),
  );
  const ownCount =
    typeof stats?.messages === "number" &&
    typeof stats.fileSyncs === "number" &&
    stats.fileSyncs > 0
      ? { messages: stats.messages, fileSyncs: stats.fileSyncs }
      : undefined;
  const ownNote = ownCount
    ? `the server's own counters: ${ownCount.messages} messages, ${ownCount.fileSyncs} fdatasyncs of session files (${(ownCount.messages / ownCount.fileSyncs).toFixed(1)} per fdatasync, warm-ups included)`
    : undefined;
  const fsyncs = await fsyncsPerRun(fsyncTrace, durable.runs);
  const perFsync = fsyncs
    ? durable.runs.map((run, index) => run.messages / Math.max(1, fsyncs[index] as number))
    : ownCount && [ownCount.messages / ownCount.fileSyncs];
  if (perFsync) {
    rows.push(
      row(
        3,
        fsyncs
          ? "messages per fsync (strace: fsync + fdatasync) vs messages per request"
          : "messages per fdatasync (the server's counters, warm-ups included)",
        "msgs",
        perFsync,
        {
          baseline: { label: "one fsync per request", runs: [messagesPerRequest] },
          target: { on: "value", op: ">=", limit: 10 },
          ...(fsyncs && ownNote ? { note: ownNote } : {}),
        },
      ),
    );
  } else {
    context.skipped.push(
      "(3) messages per fsync: neither strace (scripts/setup-bench.sh installs it) nor the server's counters were available",
    );
  }
  const probe = await measureFdatasync(
    freshDir(context.workDir, "fdatasync-probe"),
    messagesPerRequest * MESSAGE_BYTES,
    context.mode === "full" ? 200 : 50,
  );
  rows.push(
    row(
      3,
      "ack latency p50",
      "ms",
      durable.runs.map((run) => run.p50Ms),
      {
        baseline: { label: "bare fdatasync p50", runs: [median(probe)] },
        note: `baseline: append ${messagesPerRequest * MESSAGE_BYTES} B + fdatasync in the bench process, ${probe.length} times`,
      },
    ),
    row(
      3,
      "ack latency p99",
      "ms",
      durable.runs.map((run) => run.p99Ms),
      { baseline: { label: "bare fdatasync p99", runs: [percentile(probe, 99)] } },
    ),
  );
  return rows;
}

export const durableAppend: Scenario = {
  id: 3,
  title: "durable acks (sync), 64 sessions, 10 messages per request (Go load client)",
  async run(context) {
    const { sessions, messagesPerRequest, window } = context.sizes.durable;
    const buffered = await batchedBuffered(context);
    const fsyncTrace = context.strace ? join(context.workDir, "scenario-3.strace") : undefined;
    const durable = await measure(
      context,
      3,
      { streams: sessions, batch: messagesPerRequest, window },
      sessionstore(3, true, fsyncTrace ? { fsyncTrace } : {}),
    );
    if (!durable) {
      context.skipped.push(`(3) every row: ${LOADGEN_MISSING}`);
      return [];
    }
    const shape = `${sessions} sessions, ${messagesPerRequest} messages per request, ${window} in flight per session`;
    return [
      ...versus(3, `durable append msgs/s (${shape}) vs (1) buffered`, durable, buffered, {
        target: { on: "ratio", op: ">=", limit: 0.5 },
        note: cpuNote([durable]),
      }),
      ...(await fsyncRows(context, durable, fsyncTrace, messagesPerRequest)),
    ];
  },
};

export const agentsAppend: Scenario = {
  id: 15,
  title: "64 agents, 1 message per sync request, 1 in flight each (Go load client)",
  async run(context) {
    const [durable, redisAlways, pgOn, jetstream] = await measureAll(context, 15, AGENTS, [
      sessionstore(15, true),
      redis("always"),
      postgres(true),
      nats("always"),
    ]);
    return [
      ...versus(15, "durable msgs/s, 64 agents, vs Redis AOF always", durable, redisAlways, {
        target: { on: "ratio", op: ">=", limit: 0.8 },
        note: cpuNote([durable, redisAlways, pgOn, jetstream]),
      }),
      ...versus(
        15,
        "durable msgs/s, 64 agents, vs PostgreSQL, synchronous_commit on",
        durable,
        pgOn,
        {
          target: { on: "ratio", op: ">=", limit: 2 },
        },
      ),
      ...versus(
        15,
        "durable msgs/s, 64 agents, vs NATS JetStream, sync_interval always",
        durable,
        jetstream,
      ),
      ...latency(15, 50, durable, redisAlways),
      ...latency(15, 99, durable, redisAlways, { on: "ratio", op: "<=", limit: 2 }),
    ];
  },
};
