import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { median } from "./stats.js";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (user + system) from a /proc stat file (Linux). */
function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, "utf8");
  // Fields after "(comm)": state is the 3rd field of the line, utime the 14th, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** How much CPU a process used while something ran, per wall-clock second. */
export interface CpuUse {
  /** Its main thread: for Node, the event loop and the JavaScript on it. */
  main: number;
  /** All its threads: for Node, also the thread pool doing file I/O, and the GC helpers. */
  all: number;
}

/**
 * Starts measuring the CPU of each of `pids`; the function returned ends the measurement and
 * gives their CPU per wall-clock second since (1 = one core).
 */
export function startCpuUse(pids: readonly number[]): () => CpuUse[] {
  const sample = () =>
    pids.map((pid) => ({
      main: statCpuSeconds(`/proc/${pid}/task/${pid}/stat`),
      all: statCpuSeconds(`/proc/${pid}/stat`),
    }));
  const before = sample();
  const started = performance.now();
  return () => {
    const after = sample();
    const seconds = (performance.now() - started) / 1000;
    return after.map((end, index) => {
      const start = before[index] as CpuUse;
      return { main: (end.main - start.main) / seconds, all: (end.all - start.all) / seconds };
    });
  };
}

/** The CPU used by each of `pids` while `task` ran, per wall-clock second (1 = one core). */
export async function cpuUseDuring<T>(
  pids: readonly number[],
  task: () => Promise<T>,
): Promise<{ result: T; use: CpuUse[] }> {
  const stop = startCpuUse(pids);
  const result = await task();
  return { result, use: stop() };
}

/** "main thread 57%, all threads 80%" */
export function formatCpuUse(use: CpuUse): string {
  return `main thread ${Math.round(use.main * 100)}%, all threads ${Math.round(use.all * 100)}%`;
}

/** The per-field median of several runs' CPU use. */
export function medianCpuUse(uses: readonly CpuUse[]): CpuUse {
  return { main: median(uses.map((use) => use.main)), all: median(uses.map((use) => use.all)) };
}
