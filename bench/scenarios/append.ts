import { cpus } from "node:os";
import { join } from "node:path";
import { type AppendLoad, type AppendResult, driveAppend } from "../append-load.js";
import { type BenchContext, cpuProfileDir, row, type Scenario, sessionIds } from "../context.js";
import { type CpuUse, cpuUseDuring, formatCpuUse, medianCpuUse } from "../cpu.js";
import { startEcho } from "../echo.js";
import { countBetween, measureFdatasync, readFsyncTrace } from "../fsyncs.js";
import { MESSAGE_BYTES } from "../payloads.js";
import { driveXadd } from "../redis.js";
import type { Row } from "../report.js";
import { freshDir, type SessionStoreProcess, startSessionStore } from "../sessionstore.js";
import { median, percentile } from "../stats.js";

/** One measured run, with the CPU the server and the bench (its client) used meanwhile. */
export interface MeasuredRun extends AppendResult {
  serverCpu: CpuUse;
  clientCpu: CpuUse;
}

/** What an append workload runs against: drives a load, and whose main thread serves it. */
export interface Target {
  label: string;
  pid: number;
  drive(load: AppendLoad): Promise<AppendResult>;
}

/** Runs `drive` once to warm up (a quarter of the size), then `runs` times; fresh ids each time. */
export async function measureRuns(
  context: BenchContext,
  target: Target,
  load: (prefix: string, requestsPerStream: number) => AppendLoad,
  requestsPerStream: number,
): Promise<MeasuredRun[]> {
  const prefix = target.label.replace(/[^A-Za-z0-9]+/g, "-");
  await target.drive(load(`${prefix}-warmup`, Math.max(1, Math.ceil(requestsPerStream / 4))));
  const runs: MeasuredRun[] = [];
  for (let run = 0; run < context.sizes.runs; run++) {
    const { result, use } = await cpuUseDuring([target.pid, process.pid], () =>
      target.drive(load(`${prefix}-${run}`, requestsPerStream)),
    );
    const [serverCpu, clientCpu] = use as [CpuUse, CpuUse];
    context.log(
      `  ${target.label} run ${run + 1}: ${Math.round(result.messagesPerSecond).toLocaleString("en-US")} msgs/s ` +
        `(CPU: server ${formatCpuUse(serverCpu)}; bench ${formatCpuUse(clientCpu)})`,
    );
    runs.push({ ...result, serverCpu, clientCpu });
  }
  return runs;
}

export const rates = (runs: readonly AppendResult[]) => runs.map((run) => run.messagesPerSecond);

/** The CPU each server and the bench client used (medians of the runs): who is the bottleneck. */
export function cpuNote(
  measured: readonly { label: string; runs: readonly MeasuredRun[] }[],
): string {
  return `CPU per wall second (medians; 100% = one core of ${cpus().length}): ${measured
    .map(
      ({ label, runs }) =>
        `${label}: ${formatCpuUse(medianCpuUse(runs.map((r) => r.serverCpu)))}, ` +
        `bench client ${formatCpuUse(medianCpuUse(runs.map((r) => r.clientCpu)))}`,
    )
    .join("; ")}`;
}

/**
 * Runs `use` with a fresh server, then stops it; `logs` are the server's log lines, complete
 * once the server has exited (the storage's counters are logged when it closes).
 */
async function withServer<T>(
  context: BenchContext,
  scenario: number,
  options: { fsyncTrace?: string },
  use: (server: SessionStoreProcess) => Promise<T>,
): Promise<{ result: T; logs: Record<string, unknown>[] }> {
  const profileDir = cpuProfileDir(context, scenario);
  const server = await startSessionStore({
    dataDir: freshDir(context.workDir, `scenario-${scenario}`),
    ...options,
    ...(profileDir ? { cpuProfileDir: profileDir } : {}),
  });
  try {
    return { result: await use(server), logs: server.logs };
  } finally {
    await server.close();
  }
}

export function sessionStoreTarget(server: SessionStoreProcess, label = "sessionstore"): Target {
  return { label, pid: server.pid, drive: (load) => driveAppend(server.client, load) };
}

/** Runs the bare grpc-js echo baseline with `load`. */
async function echoRuns(
  context: BenchContext,
  load: (prefix: string, requestsPerStream: number) => AppendLoad,
  requestsPerStream: number,
): Promise<MeasuredRun[]> {
  const echo = await startEcho();
  try {
    const target = {
      label: "echo",
      pid: echo.pid,
      drive: (l: AppendLoad) => driveAppend(echo.client, l),
    };
    return await measureRuns(context, target, load, requestsPerStream);
  } finally {
    await echo.close();
  }
}

/** The load of (1): streams of 100-message buffered requests. */
function streamingLoad(context: BenchContext) {
  const { streams, window } = context.sizes.streaming;
  return (prefix: string, requestsPerStream: number): AppendLoad => ({
    sessionIds: sessionIds(prefix, streams),
    requestsPerStream,
    messagesPerRequest: 100,
    window,
    sync: false,
    payloads: context.payloads,
  });
}

/** (1)'s server runs: measured once, shared with (3). */
function streamingServerRuns(context: BenchContext): Promise<MeasuredRun[]> {
  return context.once("streaming-server", async () => {
    const { result } = await withServer(context, 1, {}, (server) =>
      measureRuns(
        context,
        sessionStoreTarget(server),
        streamingLoad(context),
        context.sizes.streaming.requestsPerStream,
      ),
    );
    return result;
  });
}

export const streamingAppend: Scenario = {
  id: 1,
  title: "streaming append, 100 messages per request, buffered",
  async run(context) {
    const load = streamingLoad(context);
    const { requestsPerStream } = context.sizes.streaming;
    const server = await streamingServerRuns(context);
    const echo = await echoRuns(context, load, requestsPerStream);
    const measured = [
      { label: "sessionstore", runs: server },
      { label: "echo", runs: echo },
    ];
    const rows: Row[] = [];
    const { redis } = context;
    if (redis) {
      const target: Target = {
        label: "redis XADD",
        pid: redis.pid,
        async drive(l) {
          const result = await driveXadd(redis.port, l);
          await redis.flushAll();
          return result;
        },
      };
      const redisRuns = await measureRuns(context, target, load, requestsPerStream);
      measured.push({ label: "redis-server", runs: redisRuns });
      rows.push(
        row(1, "append msgs/s (100 per request) vs Redis pipelined XADD", "msgs/s", rates(server), {
          baseline: { label: "Redis XADD, pipelined", runs: rates(redisRuns) },
          target: { on: "ratio", op: ">=", limit: 1.5 },
        }),
      );
    } else {
      context.skipped.push(
        "(1) the Redis column: redis-server is not installed (scripts/setup-bench.sh installs it)",
      );
    }
    rows.unshift(
      row(1, "append msgs/s (100 per request) vs bare grpc-js echo", "msgs/s", rates(server), {
        baseline: { label: "grpc-js echo", runs: rates(echo) },
        target: { on: "ratio", op: ">=", limit: 0.7 },
        note: cpuNote(measured),
      }),
    );
    return rows;
  },
};

export const singleMessageAppend: Scenario = {
  id: 2,
  title: "streaming append, 1 message per request, buffered",
  async run(context) {
    const { streams, requestsPerStream, window } = context.sizes.singleMessage;
    const load = (prefix: string, requests: number): AppendLoad => ({
      sessionIds: sessionIds(prefix, streams),
      requestsPerStream: requests,
      messagesPerRequest: 1,
      window,
      sync: false,
      payloads: context.payloads,
    });
    const { result: server } = await withServer(context, 2, {}, (s) =>
      measureRuns(context, sessionStoreTarget(s), load, requestsPerStream),
    );
    const echo = await echoRuns(context, load, requestsPerStream);
    return [
      row(2, "append msgs/s (1 per request) vs bare grpc-js echo", "msgs/s", rates(server), {
        baseline: { label: "grpc-js echo", runs: rates(echo) },
        target: { on: "ratio", op: ">=", limit: 0.7 },
        note: cpuNote([
          { label: "sessionstore", runs: server },
          { label: "echo", runs: echo },
        ]),
      }),
    ];
  },
};

/**
 * The fsyncs per run: from strace's log when it ran, else undefined. The server's own counter
 * (logged when it closes) covers its whole life, so it only cross-checks.
 */
async function fsyncsPerRun(
  fsyncTrace: string | undefined,
  runs: readonly MeasuredRun[],
): Promise<number[] | undefined> {
  if (!fsyncTrace) return undefined;
  const calls = await readFsyncTrace(fsyncTrace);
  return runs.map((run) => countBetween(calls, run.startedAtEpochMs, run.endedAtEpochMs));
}

export const durableAppend: Scenario = {
  id: 3,
  title: "durable acks (sync), concurrent sessions",
  async run(context) {
    const { sessions, requestsPerStream, messagesPerRequest, window } = context.sizes.durable;
    const load = (prefix: string, requests: number): AppendLoad => ({
      sessionIds: sessionIds(prefix, sessions),
      requestsPerStream: requests,
      messagesPerRequest,
      window,
      sync: true,
      payloads: context.payloads,
    });
    const reference = await streamingServerRuns(context);
    const fsyncTrace = context.strace ? join(context.workDir, "scenario-3.strace") : undefined;
    const { result: runs, logs } = await withServer(
      context,
      3,
      fsyncTrace ? { fsyncTrace } : {},
      (server) =>
        measureRuns(
          context,
          sessionStoreTarget(server, "sessionstore sync"),
          load,
          requestsPerStream,
        ),
    );
    const probe = await measureFdatasync(
      freshDir(context.workDir, "fdatasync-probe"),
      messagesPerRequest * MESSAGE_BYTES,
      context.mode === "full" ? 200 : 50,
    );
    const shape = `${sessions} sessions, ${messagesPerRequest} messages per request, ${window} in flight per session`;
    const rows = [
      row(3, `durable append msgs/s (${shape}) vs (1)`, "msgs/s", rates(runs), {
        baseline: { label: "(1) sessionstore, buffered", runs: rates(reference) },
        target: { on: "ratio", op: ">=", limit: 0.5 },
        note: cpuNote([{ label: "sessionstore", runs }]),
      }),
    ];
    // The server's own count over its life (warm-up included): fdatasyncs of session files.
    const stats = logs.find((entry) => String(entry.msg).startsWith("closed the data directory"));
    const ownCount =
      typeof stats?.messages === "number" &&
      typeof stats.fileSyncs === "number" &&
      stats.fileSyncs > 0
        ? { messages: stats.messages, fileSyncs: stats.fileSyncs }
        : undefined;
    const ownNote = ownCount
      ? `the server's own counters: ${ownCount.messages} messages, ${ownCount.fileSyncs} fdatasyncs of session files (${(ownCount.messages / ownCount.fileSyncs).toFixed(1)} per fdatasync, warm-up included)`
      : undefined;
    const fsyncs = await fsyncsPerRun(fsyncTrace, runs);
    const perFsync = fsyncs
      ? runs.map((run, index) => run.messages / Math.max(1, fsyncs[index] as number))
      : ownCount && [ownCount.messages / ownCount.fileSyncs];
    if (perFsync) {
      rows.push(
        row(
          3,
          fsyncs
            ? "messages per fsync (strace: fsync + fdatasync) vs messages per request"
            : "messages per fdatasync (the server's counters, warm-up included)",
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
    rows.push(
      row(
        3,
        "ack latency p50",
        "ms",
        runs.map((run) => percentile(run.ackLatenciesMs, 50)),
        {
          baseline: { label: "bare fdatasync p50", runs: [median(probe)] },
          note: `baseline: append ${messagesPerRequest * MESSAGE_BYTES} B + fdatasync in the bench process, ${probe.length} times`,
        },
      ),
      row(
        3,
        "ack latency p99",
        "ms",
        runs.map((run) => percentile(run.ackLatenciesMs, 99)),
        {
          baseline: { label: "bare fdatasync p99", runs: [percentile(probe, 99)] },
        },
      ),
    );
    return rows;
  },
};
