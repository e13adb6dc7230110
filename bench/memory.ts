import { readFileSync, writeFileSync } from "node:fs";

/** A field of /proc/<pid>/status given in kB (VmRSS, VmHWM), in bytes. */
function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** The resident set size of a process now, in bytes. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, "VmRSS");
}

/** The peak resident set size of a process since it started or since `resetPeakRss`. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, "VmHWM");
}

/** Resets a process's peak RSS to its current RSS (Linux ≥ 4.0); false when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak RSS of a process while `task` runs: from the kernel's high-water mark when it can be
 * reset, else from sampling every few milliseconds (which may miss a short spike).
 */
export async function peakRssDuring<T>(
  pid: number,
  task: () => Promise<T>,
): Promise<{ result: T; peakBytes: number }> {
  if (resetPeakRss(pid)) {
    const result = await task();
    return { result, peakBytes: peakRssBytes(pid) };
  }
  let peakBytes = rssBytes(pid);
  const sampler = setInterval(() => {
    peakBytes = Math.max(peakBytes, rssBytes(pid));
  }, 5);
  try {
    const result = await task();
    return { result, peakBytes: Math.max(peakBytes, rssBytes(pid)) };
  } finally {
    clearInterval(sampler);
  }
}
