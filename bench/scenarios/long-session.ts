import { open } from "node:fs/promises";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { crc32 } from "node:zlib";
import { type BenchContext, cpuProfileDir, MB, row, type Scenario } from "../context.js";
import { type CpuUse, cpuUseDuring, formatCpuUse, medianCpuUse } from "../cpu.js";
import { writeSessionFile } from "../datasets.js";
import { peakRssDuring, rssBytes } from "../memory.js";
import { takeMessages } from "../payloads.js";
import {
  Appender,
  flush,
  freshDir,
  loadCount,
  type SessionStoreProcess,
  startSessionStore,
} from "../sessionstore.js";
import { median, nowMs, timed } from "../stats.js";

const LONG = "long-session";
const SHORT = "short-session";

/** The data directory holding LONG (the long session) and SHORT, written once. */
function longSessionDir(context: BenchContext): Promise<string> {
  return context.once("long-session-dir", async () => {
    const { messages, shortMessages } = context.sizes.longSession;
    const dataDir = freshDir(context.workDir, "long-session");
    context.log(`  writing a session of ${messages.toLocaleString("en-US")} messages`);
    writeSessionFile(dataDir, LONG, messages, context.payloads);
    writeSessionFile(dataDir, SHORT, shortMessages, context.payloads);
    return dataDir;
  });
}

async function withLongSessionServer<T>(
  context: BenchContext,
  scenario: number,
  use: (server: SessionStoreProcess) => Promise<T>,
): Promise<T> {
  const profileDir = cpuProfileDir(context, scenario);
  const server = await startSessionStore({
    dataDir: await longSessionDir(context),
    ...(profileDir ? { cpuProfileDir: profileDir } : {}),
  });
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

/** Appends `messagesPerFlush` messages, then times a Flush of the session, `flushes` times. */
async function flushTimes(
  context: BenchContext,
  server: SessionStoreProcess,
  sessionId: string,
  flushes: number,
): Promise<number[]> {
  const { messagesPerFlush } = context.sizes.longSession;
  const appender = new Appender(server.client);
  const times: number[] = [];
  for (let index = 0; index < flushes; index++) {
    await appender.append({
      sessionId,
      messages: takeMessages(context.payloads, index * messagesPerFlush, messagesPerFlush),
    });
    const { ms } = await timed(() => flush(server.client, sessionId));
    times.push(ms);
  }
  await appender.end();
  return times;
}

export const appendToLongSession: Scenario = {
  id: 4,
  title: "append to a long session vs to an empty one",
  async run(context) {
    const { messages, flushes, messagesPerFlush } = context.sizes.longSession;
    const long: number[] = [];
    const empty: number[] = [];
    await withLongSessionServer(context, 4, async (server) => {
      await flushTimes(context, server, LONG, 3);
      await flushTimes(context, server, "empty-warmup", 3);
      for (let run = 0; run < context.sizes.runs; run++) {
        long.push(median(await flushTimes(context, server, LONG, flushes)));
        empty.push(median(await flushTimes(context, server, `empty-${run}`, flushes)));
        context.log(
          `  run ${run + 1}: ${long.at(-1)?.toFixed(2)} ms vs ${empty.at(-1)?.toFixed(2)} ms per flush`,
        );
      }
    });
    return [
      row(
        4,
        `time per flush (append ${messagesPerFlush} + Flush RPC), session of ${messages.toLocaleString("en-US")} vs empty`,
        "ms",
        long,
        {
          baseline: { label: "empty session", runs: empty },
          target: { on: "ratio", op: "<=", limit: 1.2 },
        },
      ),
    ];
  },
};

/**
 * The in-process baseline of Load: read the file in 1 MiB chunks, split it into lines and
 * JSON.parse each message line (what a reader of the file itself has to do at least).
 */
async function readSplitParse(path: string): Promise<number> {
  const file = await open(path, "r");
  const chunk = Buffer.allocUnsafe(1 << 20);
  const decoder = new StringDecoder("utf8");
  let partial = "";
  let count = -1; // the header line
  try {
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      const lines = (partial + decoder.write(chunk.subarray(0, bytesRead))).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (count >= 0) JSON.parse(line);
        count++;
      }
    }
  } finally {
    await file.close();
  }
  return count;
}

/**
 * What the record checks of a Load cost: the file read in 1 MiB chunks, split into lines, and
 * the CRC-32 the server checks against its index computed for each line, in this process.
 * Resolves to the records checked.
 */
async function readSplitChecksum(path: string): Promise<number> {
  const file = await open(path, "r");
  const chunk = Buffer.allocUnsafe(1 << 20);
  let count = -1; // the header line
  let carry = 0;
  try {
    for (let position = 0; ; ) {
      const { bytesRead } = await file.read(chunk, carry, chunk.length - carry, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const end = carry + bytesRead;
      let start = 0;
      for (let newline = chunk.indexOf(0x0a, 0); newline !== -1 && newline < end; ) {
        if (count >= 0) crc32(chunk.subarray(start, newline));
        count++;
        start = newline + 1;
        newline = chunk.indexOf(0x0a, start);
      }
      carry = end - start;
      chunk.copy(chunk, 0, start, end);
    }
  } finally {
    await file.close();
  }
  return count;
}

export const loadLongSession: Scenario = {
  id: 5,
  title: "load of a long session",
  async run(context) {
    const { messages } = context.sizes.longSession;
    const dataDir = await longSessionDir(context);
    const serverRates: number[] = [];
    const growthMb: number[] = [];
    const parseRates: number[] = [];
    const parseGrowthMb: number[] = [];
    const checkShares: number[] = [];
    const serverCpu: CpuUse[] = [];
    const clientCpu: CpuUse[] = [];
    await readSplitParse(join(dataDir, `${SHORT}.jsonl`));
    for (let run = 0; run < context.sizes.runs; run++) {
      // A fresh server each run, so that one run's heap does not carry into the next.
      await withLongSessionServer(context, 5, async (server) => {
        for (let warmup = 0; warmup < 3; warmup++)
          await loadCount(server.client, { sessionId: SHORT });
        await loadCount(server.client, { sessionId: LONG, limit: 1 });
        const before = rssBytes(server.pid);
        const { result, peakBytes } = await peakRssDuring(server.pid, () =>
          cpuUseDuring([server.pid, process.pid], () =>
            timed(() => loadCount(server.client, { sessionId: LONG })),
          ),
        );
        const { result: loaded, use } = result;
        if (loaded.result !== messages) {
          throw new Error(`Load returned ${loaded.result} messages, expected ${messages}`);
        }
        serverRates.push(messages / (loaded.ms / 1000));
        growthMb.push((peakBytes - before) / MB);
        serverCpu.push(use[0] as CpuUse);
        clientCpu.push(use[1] as CpuUse);
      });
      const before = rssBytes(process.pid);
      const { result, peakBytes } = await peakRssDuring(process.pid, () =>
        timed(() => readSplitParse(join(dataDir, `${LONG}.jsonl`))),
      );
      parseRates.push(result.result / (result.ms / 1000));
      parseGrowthMb.push((peakBytes - before) / MB);
      const checks = await timed(() => readSplitChecksum(join(dataDir, `${LONG}.jsonl`)));
      checkShares.push((100 * checks.ms) / (1000 * (messages / (serverRates.at(-1) ?? 1))));
      context.log(
        `  run ${run + 1}: Load ${Math.round(serverRates.at(-1) ?? 0).toLocaleString("en-US")} msgs/s ` +
          `(+${growthMb.at(-1)?.toFixed(1)} MB RSS), read+split+parse ${Math.round(parseRates.at(-1) ?? 0).toLocaleString("en-US")} msgs/s`,
      );
    }
    const size = messages.toLocaleString("en-US");
    return [
      row(
        5,
        `Load msgs/s, session of ${size} vs read+split+JSON.parse in one process`,
        "msgs/s",
        serverRates,
        {
          baseline: { label: "read+split+parse in-process", runs: parseRates },
          target: { on: "ratio", op: ">=", limit: 0.7 },
          note:
            `CPU per wall second during the Load (medians; 100% = one core): server ${formatCpuUse(medianCpuUse(serverCpu))}; ` +
            `bench client receiving it ${formatCpuUse(medianCpuUse(clientCpu))}`,
        },
      ),
      row(
        5,
        "record checks: read+split+CRC-32 of every record in-process, as % of the Load's time",
        "%",
        checkShares,
        {
          note: "the Load checks each record's CRC-32 against the sidecar index; this row is an upper bound of that work (it includes reading and splitting the file)",
        },
      ),
      row(5, `server peak RSS growth during the Load of ${size}`, "MB", growthMb, {
        baseline: { label: "in-process read+split+parse", runs: parseGrowthMb },
        target: { on: "value", op: "<=", limit: 64 },
      }),
    ];
  },
};

export const lastMessages: Scenario = {
  id: 6,
  title: "the last 100 messages of a long session vs of a short one",
  async run(context) {
    const { messages, shortMessages, lastCalls } = context.sizes.longSession;
    const long: number[] = [];
    const short: number[] = [];
    const lastHundred = async (server: SessionStoreProcess, sessionId: string) => {
      const times: number[] = [];
      for (let call = 0; call < lastCalls; call++) {
        const start = nowMs();
        const count = await loadCount(server.client, { sessionId, limit: 100, last: true });
        times.push(nowMs() - start);
        if (count !== 100) throw new Error(`Load of the last 100 returned ${count} messages`);
      }
      return median(times);
    };
    await withLongSessionServer(context, 6, async (server) => {
      await lastHundred(server, LONG);
      await lastHundred(server, SHORT);
      for (let run = 0; run < context.sizes.runs; run++) {
        long.push(await lastHundred(server, LONG));
        short.push(await lastHundred(server, SHORT));
      }
    });
    return [
      row(
        6,
        `Load of the last 100 messages, session of ${messages.toLocaleString("en-US")} vs of ${shortMessages}`,
        "ms",
        long,
        {
          baseline: { label: `session of ${shortMessages}`, runs: short },
          target: { on: "ratio", op: "<=", limit: 2 },
        },
      ),
    ];
  },
};
