import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { nowMs } from "./stats.js";

/** One fsync-family system call the server made, from an strace log. */
interface FsyncCall {
  epochMs: number;
  call: "fsync" | "fdatasync";
}

/**
 * The fsync and fdatasync calls in a log of `strace -f -ttt -e trace=fsync,fdatasync`. A call
 * that another thread interrupted is logged as "<unfinished ...>" and then "<... resumed>": only
 * its first line names the call with its parenthesis, so each call counts once.
 */
export async function readFsyncTrace(path: string): Promise<FsyncCall[]> {
  const calls: FsyncCall[] = [];
  for (const line of (await readFile(path, "utf8")).split("\n")) {
    const match = /^(?:\d+\s+)?(\d+\.\d+)\s+(fsync|fdatasync)\(/.exec(line);
    if (match) {
      calls.push({ epochMs: Number(match[1]) * 1000, call: match[2] as FsyncCall["call"] });
    }
  }
  return calls;
}

/** How many of `calls` happened within [fromEpochMs, toEpochMs]. */
export function countBetween(
  calls: readonly FsyncCall[],
  fromEpochMs: number,
  toEpochMs: number,
): number {
  return calls.filter((call) => call.epochMs >= fromEpochMs && call.epochMs <= toEpochMs).length;
}

/**
 * The latency of a bare append-and-fdatasync of `bytes` bytes in `directory`, measured in this
 * process `samples` times: what one durable write costs on this disk, without any server.
 */
export async function measureFdatasync(
  directory: string,
  bytes: number,
  samples: number,
): Promise<number[]> {
  const path = join(directory, "fdatasync-probe");
  const file = await open(path, "w");
  const data = Buffer.alloc(bytes, 0x61);
  const latencies: number[] = [];
  try {
    for (let sample = 0; sample < samples; sample++) {
      const start = nowMs();
      await file.write(data, 0, data.length, sample * bytes);
      await file.datasync();
      latencies.push(nowMs() - start);
    }
  } finally {
    await file.close();
    await rm(path, { force: true });
  }
  return latencies;
}
