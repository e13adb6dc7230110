import { type BenchContext, cpuProfileDir, MB, row, type Scenario } from "../context.js";
import { writeManySessions } from "../datasets.js";
import { peakRssBytes, rssBytes } from "../memory.js";
import { MESSAGE_BYTES, takeMessages } from "../payloads.js";
import {
  appendPipelined,
  freshDir,
  listFirstPage,
  type SessionStoreProcess,
  startSessionStore,
} from "../sessionstore.js";
import { median, timed } from "../stats.js";

/** A data directory of `sessions` small session files, written once per size. */
function sessionsDir(context: BenchContext, sessions: number): Promise<string> {
  return context.once(`sessions-${sessions}`, async () => {
    const dataDir = freshDir(context.workDir, `sessions-${sessions}`);
    context.log(`  writing ${sessions.toLocaleString("en-US")} session files`);
    writeManySessions(
      dataDir,
      "agent-",
      sessions,
      context.sizes.manySessions.messagesEach,
      context.payloads,
    );
    return dataDir;
  });
}

interface ListRun {
  startupMs: number;
  coldListMs: number;
  warmListMs: number;
}

/** Starts a server on `dataDir`, times its start-up, its first List and then `calls` more. */
async function listRun(context: BenchContext, dataDir: string, calls: number): Promise<ListRun> {
  const profileDir = cpuProfileDir(context, 7);
  const server = await startSessionStore({
    dataDir,
    ...(profileDir ? { cpuProfileDir: profileDir } : {}),
  });
  try {
    const cold = await timed(() => listFirstPage(server.client));
    if (cold.result.sessions.length === 0) throw new Error("List returned no sessions");
    const warm: number[] = [];
    for (let call = 0; call < calls; call++) {
      warm.push((await timed(() => listFirstPage(server.client))).ms);
    }
    return { startupMs: server.startupMs, coldListMs: cold.ms, warmListMs: median(warm) };
  } finally {
    await server.close();
  }
}

export const manySessions: Scenario = {
  id: 7,
  title: "List and start-up with many sessions on disk",
  async run(context) {
    const { sessions, fewSessions, listCalls } = context.sizes.manySessions;
    const manyDir = await sessionsDir(context, sessions);
    const fewDir = await sessionsDir(context, fewSessions);
    await listRun(context, fewDir, listCalls); // warm-up: the page cache, the CLI's modules
    await listRun(context, manyDir, listCalls);
    const many: ListRun[] = [];
    const few: ListRun[] = [];
    for (let run = 0; run < context.sizes.runs; run++) {
      many.push(await listRun(context, manyDir, listCalls));
      few.push(await listRun(context, fewDir, listCalls));
      context.log(
        `  run ${run + 1}: start-up ${many.at(-1)?.startupMs.toFixed(0)} ms vs ${few.at(-1)?.startupMs.toFixed(0)} ms, ` +
          `List ${many.at(-1)?.warmListMs.toFixed(2)} ms vs ${few.at(-1)?.warmListMs.toFixed(2)} ms`,
      );
    }
    const count = sessions.toLocaleString("en-US");
    const pick = (runs: ListRun[], key: keyof ListRun) => runs.map((run) => run[key]);
    return [
      row(
        7,
        `List first page (100 sessions), ${count} sessions vs ${fewSessions}`,
        "ms",
        pick(many, "warmListMs"),
        {
          baseline: { label: `${fewSessions} sessions`, runs: pick(few, "warmListMs") },
          target: { on: "ratio", op: "<=", limit: 3 },
          note: `median of ${listCalls} calls on a running server; the row below is the first call after start-up, which opens the page's files`,
        },
      ),
      row(
        7,
        `List first page, first call after start-up, ${count} sessions vs ${fewSessions}`,
        "ms",
        pick(many, "coldListMs"),
        {
          baseline: { label: `${fewSessions} sessions`, runs: pick(few, "coldListMs") },
        },
      ),
      row(
        7,
        `server start-up (spawn to listening), ${count} sessions on disk`,
        "ms",
        pick(many, "startupMs"),
        {
          baseline: { label: `${fewSessions} sessions`, runs: pick(few, "startupMs") },
          target: { on: "value", op: "<=", limit: 2000 },
        },
      ),
    ];
  },
};

/** Appends `messagesEach` messages to each of `sessions` sessions, spread over `streams` streams. */
async function fillSessions(
  context: BenchContext,
  server: SessionStoreProcess,
  prefix: string,
  sessions: number,
): Promise<void> {
  const { messagesEach, streams } = context.sizes.buffered;
  function* requestsOf(stream: number) {
    for (let index = stream; index < sessions; index += streams) {
      yield {
        sessionId: `${prefix}-${index}`,
        messages: takeMessages(context.payloads, index * messagesEach, messagesEach),
      };
    }
  }
  await Promise.all(
    Array.from({ length: streams }, (_, stream) =>
      appendPipelined(server.client, requestsOf(stream)),
    ),
  );
}

export const bufferedSessions: Scenario = {
  id: 8,
  title: "server RSS with many sessions holding buffered messages",
  async run(context) {
    const { sessions, messagesEach } = context.sizes.buffered;
    const idle: number[] = [];
    const filled: number[] = [];
    const peak: number[] = [];
    for (let run = 0; run < context.sizes.runs; run++) {
      const profileDir = cpuProfileDir(context, 8);
      // Nothing is written while it runs: the flush interval outlasts it, and every session
      // holds fewer messages than --flush-messages (20).
      const server = await startSessionStore({
        dataDir: freshDir(context.workDir, `scenario-8-${run}`),
        args: ["--flush-interval-ms", "600000"],
        ...(profileDir ? { cpuProfileDir: profileDir } : {}),
      });
      try {
        await fillSessions(context, server, "warmup", 100);
        idle.push(rssBytes(server.pid) / MB);
        await fillSessions(context, server, "agent", sessions);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        filled.push(rssBytes(server.pid) / MB);
        peak.push(peakRssBytes(server.pid) / MB);
        context.log(
          `  run ${run + 1}: ${filled.at(-1)?.toFixed(1)} MB (idle ${idle.at(-1)?.toFixed(1)} MB)`,
        );
      } finally {
        // Killed, not shut down: a graceful stop would first write every buffered session.
        await server.close({ kill: !profileDir });
      }
    }
    const buffered = (sessions * messagesEach * MESSAGE_BYTES) / MB;
    return [
      row(
        8,
        `server RSS, ${sessions.toLocaleString("en-US")} sessions × ${messagesEach} buffered messages`,
        "MB",
        filled,
        {
          baseline: { label: "the same server idle", runs: idle },
          target: { on: "value", op: "<=", limit: 300 },
          note: `${buffered.toFixed(1)} MB of messages buffered; peak RSS ${median(peak).toFixed(1)} MB`,
        },
      ),
    ];
  },
};
