import { spawn } from "node:child_process";
import { accessSync, constants, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./context.js";
import { type CpuUse, formatCpuUse, startCpuUse } from "./cpu.js";

/** Where scripts/setup-bench.sh builds the Go load client (bench/loadgen) and nats-server. */
export const BENCH_BIN = fileURLToPath(new URL("../../bench/bin/", import.meta.url));

/** A program of BENCH_BIN when it was built, else undefined. */
export function benchProgram(name: string): string | undefined {
  const path = join(BENCH_BIN, name);
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** The shape of an ingestion load: the same for every peer it runs against. */
export interface LoadShape {
  /** Sessions, each one stream (gRPC) or set of connections (the others). */
  streams: number;
  /** Messages per request. */
  batch: number;
  /** Requests unanswered per stream, at most. */
  window: number;
  /** sessionstore's `sync`: the ack waits for the fsync (other peers: their server's setting). */
  sync: boolean;
}

/** A system the load client drives, running; `pid` is whose CPU to show (none: not one process). */
export interface LoadPeer {
  kind: "grpc" | "redis" | "nats" | "postgres";
  /** host:port, or a URL (nats://, postgresql://). */
  address: string;
  pid?: number;
  /** Run between measured runs (Redis: FLUSHALL, so that memory does not pile up). */
  betweenRuns?(): Promise<void>;
}

/** One sustained run, as the load client measured it (its window, after the warm-up). */
export interface LoadRun {
  messagesPerSecond: number;
  messages: number;
  p50Ms: number;
  p99Ms: number;
  /** The load client's own CPU (user + system) per wall second: 1 is one core. */
  clientCpu: number;
  /** The peer's process, over the same window. */
  peerCpu?: CpuUse;
  startedAtEpochMs: number;
  endedAtEpochMs: number;
}

interface LoadgenDone {
  event: "done";
  messages: number;
  messagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuPerWallSecond: number;
  startedAtEpochMs: number;
  endedAtEpochMs: number;
}

/** The bench's payloads as the load client reads them: one message per line. */
function payloadsFile(context: BenchContext): Promise<string> {
  return context.once("loadgen-payloads", async () => {
    const path = join(context.workDir, "payloads.jsonl");
    writeFileSync(path, `${context.payloads.join("\n")}\n`);
    return path;
  });
}

/**
 * Runs the load client once against `peer`: a warm-up, then the measured window, with the
 * peer's CPU sampled from when the client says the window opens to when it reports.
 */
export async function runLoadgen(
  context: BenchContext,
  program: string,
  peer: LoadPeer,
  shape: LoadShape,
  prefix: string,
): Promise<LoadRun> {
  const { warmupMs, durationMs } = context.sizes.sustained;
  const args = [
    `-peer=${peer.kind}`,
    `-addr=${peer.address}`,
    `-payloads=${await payloadsFile(context)}`,
    `-prefix=${prefix}`,
    `-streams=${shape.streams}`,
    `-batch=${shape.batch}`,
    `-window=${shape.window}`,
    `-sync=${shape.sync}`,
    `-warmup=${warmupMs}ms`,
    `-duration=${durationMs}ms`,
  ];
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  let stopPeerCpu: (() => CpuUse[]) | undefined;
  let peerCpu: CpuUse | undefined;
  let done: LoadgenDone | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    const event = JSON.parse(line) as { event: string };
    if (event.event === "measuring" && peer.pid !== undefined) {
      stopPeerCpu = startCpuUse([peer.pid]);
    } else if (event.event === "done") {
      peerCpu = stopPeerCpu?.()[0];
      done = event as LoadgenDone;
    }
  }
  const code = await exited;
  if (code !== 0 || !done) {
    throw new Error(`the load client failed (${code}) against ${peer.kind}:\n${stderr}`);
  }
  return {
    messagesPerSecond: done.messagesPerSecond,
    messages: done.messages,
    p50Ms: done.p50Ms,
    p99Ms: done.p99Ms,
    clientCpu: done.cpuPerWallSecond,
    ...(peerCpu ? { peerCpu } : {}),
    startedAtEpochMs: done.startedAtEpochMs,
    endedAtEpochMs: done.endedAtEpochMs,
  };
}

/** `context.sizes.runs` sustained runs against `peer`, each logged; fresh session ids each. */
export async function measureLoad(
  context: BenchContext,
  program: string,
  label: string,
  peer: LoadPeer,
  shape: LoadShape,
): Promise<LoadRun[]> {
  const prefix = label.replace(/[^A-Za-z0-9]+/g, "-");
  const runs: LoadRun[] = [];
  for (let run = 0; run < context.sizes.runs; run++) {
    const result = await runLoadgen(context, program, peer, shape, `${prefix}-${run}`);
    context.log(
      `  ${label} run ${run + 1}: ${Math.round(result.messagesPerSecond).toLocaleString("en-US")} msgs/s, ` +
        `p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (CPU: ${describeCpu(result)})`,
    );
    runs.push(result);
    await peer.betweenRuns?.();
  }
  return runs;
}

/** "peer main thread 57%, all threads 80%; load client 35%" */
export function describeCpu(run: LoadRun): string {
  return `${run.peerCpu ? `peer ${formatCpuUse(run.peerCpu)}; ` : ""}load client ${Math.round(run.clientCpu * 100)}%`;
}
