/**
 * Append loads from the bench process's generated Node client: what the PostgreSQL scenarios
 * drive the server and their bare clients with (the file backend's ingestion scenarios use the
 * Go load client: ingest.ts).
 */
import { cpus } from "node:os";
import { type AppendLoad, type AppendResult, driveAppend } from "../append-load.js";
import type { BenchContext } from "../context.js";
import { type CpuUse, cpuUseDuring, formatCpuUse, medianCpuUse } from "../cpu.js";
import type { SessionStoreProcess } from "../sessionstore.js";

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

export function sessionStoreTarget(server: SessionStoreProcess, label = "sessionstore"): Target {
  return { label, pid: server.pid, drive: (load) => driveAppend(server.client, load) };
}
