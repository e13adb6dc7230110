import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type BenchContext, row, type Scenario } from "../context.js";
import { appendPipelined, flush, freshDir, startSessionStore } from "../sessionstore.js";
import { timed } from "../stats.js";

const run = promisify(execFile);

/** test/interop/motosan in release mode (scripts/setup-bench.sh builds it with cargo). */
const MOTOSAN = fileURLToPath(
  new URL(
    "../../../test/interop/motosan/target/release/sessionstore-motosan-interop",
    import.meta.url,
  ),
);

function motosanBuilt(): boolean {
  try {
    accessSync(MOTOSAN, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Seconds for motosan's own FileSessionStore to append `count` messages and flush, per run. */
async function motosanRuns(context: BenchContext, count: number): Promise<number[]> {
  const dir = freshDir(context.workDir, "motosan-seed");
  const seconds: number[] = [];
  for (let index = 0; index < context.sizes.runs; index++) {
    const { stdout } = await run(MOTOSAN, ["append-timed", dir, `seed-${index}`, String(count)]);
    seconds.push((JSON.parse(stdout) as { seconds: number }).seconds);
    context.log(`  motosan FileSessionStore run ${index + 1}: ${seconds.at(-1)?.toFixed(2)} s`);
  }
  return seconds;
}

/** The same through the server: one message per Append request, each awaited, then Flush. */
async function sessionstoreRuns(context: BenchContext, count: number): Promise<number[]> {
  const server = await startSessionStore({ dataDir: freshDir(context.workDir, "scenario-16") });
  try {
    const seconds: number[] = [];
    for (let index = 0; index < context.sizes.runs; index++) {
      const sessionId = `seed-${index}`;
      const requests = Array.from({ length: count }, (_, seq) => ({
        sessionId,
        messages: [context.payloads[seq % context.payloads.length] as string],
      }));
      const { ms } = await timed(async () => {
        await appendPipelined(server.client, requests, 1);
        await flush(server.client, sessionId);
      });
      seconds.push(ms / 1000);
      context.log(`  sessionstore run ${index + 1}: ${(ms / 1000).toFixed(2)} s`);
    }
    return seconds;
  } finally {
    await server.close();
  }
}

/**
 * (16) The seed comparison: what the project replaces. motosan's FileSessionStore buffers 20
 * appends, then reads, re-serializes and rewrites the whole session file: appending N messages
 * costs O(N²). The server appends each message's line once.
 */
export const seedComparison: Scenario = {
  id: 16,
  title: "the seed: motosan's FileSessionStore appending N messages vs sessionstore",
  async run(context) {
    const count = context.mode === "full" ? 10_000 : 1_000;
    if (!motosanBuilt()) {
      context.skipped.push(
        "(16) the seed comparison: the motosan harness is not built in release mode (scripts/setup-bench.sh builds it when cargo is installed)",
      );
      return [];
    }
    const motosan = await motosanRuns(context, count);
    const ours = await sessionstoreRuns(context, count);
    return [
      row(
        16,
        `append ${count.toLocaleString("en-US")} messages one at a time, then flush, one session`,
        "s",
        ours,
        {
          baseline: { label: "motosan FileSessionStore, in-process", runs: motosan },
          note:
            "sessionstore: one Append request per message over gRPC (Node client, each awaited), buffered, then Flush (written and fsynced); " +
            "motosan: its own crate, release build, messages of about 450 B; it rewrites the whole file every 20 appends and on flush, and never fsyncs",
        },
      ),
    ];
  },
};
