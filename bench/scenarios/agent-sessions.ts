import {
  ForkRequest,
  type ForkResponse,
  ListOrder,
  ListRequest,
  type ListResponse,
  type SessionStoreClient,
} from "../../gen/sessionstore/v1/session_store.js";
import { type BenchContext, cpuProfileDir, row, type Scenario } from "../context.js";
import { makeChatTurns, takeMessages } from "../payloads.js";
import {
  appendPipelined,
  flush,
  freshDir,
  loadCount,
  type SessionStoreProcess,
  startSessionStore,
  unary,
} from "../sessionstore.js";
import { median, timed } from "../stats.js";

/**
 * Starts a server for one of these scenarios: on the file backend by default, or as the
 * PostgreSQL bench does (its own database). The datasets are made through the API, so the
 * scenarios are the same on every backend.
 */
export type StartServer = (context: BenchContext, scenario: number) => Promise<SessionStoreProcess>;

/** A server on the file backend over a fresh data directory. */
export const startFileServer: StartServer = (context, scenario) => {
  const profileDir = cpuProfileDir(context, scenario);
  return startSessionStore({
    dataDir: freshDir(context.workDir, `agent-${scenario}-${Date.now()}`),
    ...(profileDir ? { cpuProfileDir: profileDir } : {}),
  });
};

const LONG = "long-chat";
const TEN = "ten-chat";

/** Appends `messages` to a session in requests of 100, many in flight, then flushes it. */
async function fill(server: SessionStoreProcess, sessionId: string, messages: string[]) {
  function* requests() {
    for (let start = 0; start < messages.length; start += 100) {
      yield { sessionId, messages: messages.slice(start, start + 100) };
    }
  }
  await appendPipelined(server.client, requests(), 32);
  await flush(server.client, sessionId);
}

async function withServer<T>(
  context: BenchContext,
  start: StartServer,
  scenario: number,
  use: (server: SessionStoreProcess) => Promise<T>,
): Promise<T> {
  const server = await start(context, scenario);
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

/** The median time of `calls` calls of `call`. */
async function medianTime(calls: number, call: (index: number) => Promise<unknown>) {
  const times: number[] = [];
  for (let index = 0; index < calls; index++) times.push((await timed(() => call(index))).ms);
  return median(times);
}

function fork(client: SessionStoreClient, request: Partial<ForkRequest>): Promise<ForkResponse> {
  return unary<ForkRequest, ForkResponse>(
    (r, cb) => client.fork(r, cb),
    ForkRequest.fromPartial(request),
  );
}

function listNewest(client: SessionStoreClient, labelSelector: string): Promise<ListResponse> {
  return unary<ListRequest, ListResponse>(
    (r, cb) => client.list(r, cb),
    ListRequest.fromPartial({ labelSelector, order: ListOrder.LIST_ORDER_BY_UPDATED_DESC }),
  );
}

/** (12)-(14) on the backend `start` gives: context windows, Fork and List by labels. */
export function agentSessionScenarios(start: StartServer, backend: string): Scenario[] {
  const on = backend === "jsonl" ? "" : ` (${backend})`;
  return [
    {
      id: 12,
      title: `a context window (max_bytes + whole_turns) of a long session vs plain last${on}`,
      run: (context) =>
        withServer(context, start, 12, async (server) => {
          const { messages, windowBytes, calls } = context.sizes.agent;
          context.log(`  appending ${messages.toLocaleString("en-US")} chat messages`);
          await fill(server, LONG, makeChatTurns(messages));
          const window = { sessionId: LONG, maxBytes: windowBytes, wholeTurns: true };
          const count = await loadCount(server.client, window);
          const last = { sessionId: LONG, limit: count, last: true };
          const windows: number[] = [];
          const lasts: number[] = [];
          for (let run = 0; run <= context.sizes.runs; run++) {
            const windowMs = await medianTime(calls, () => loadCount(server.client, window));
            const lastMs = await medianTime(calls, () => loadCount(server.client, last));
            if (run === 0) continue; // warm-up
            windows.push(windowMs);
            lasts.push(lastMs);
          }
          return [
            row(
              12,
              `Load of a ${windowBytes / 1024} KiB whole-turns window (${count} messages), session of ${messages.toLocaleString("en-US")} vs plain last ${count}`,
              "ms",
              windows,
              {
                baseline: { label: `limit ${count}, last`, runs: lasts },
                target: { on: "ratio", op: "<=", limit: 1.5 },
              },
            ),
          ];
        }),
    },
    {
      id: 13,
      title: `Fork of a long session vs of a 10-message one${on}`,
      run: (context) =>
        withServer(context, start, 13, async (server) => {
          const { messages, forks } = context.sizes.agent;
          context.log(`  appending ${messages.toLocaleString("en-US")} chat messages`);
          await fill(server, LONG, makeChatTurns(messages));
          await fill(server, TEN, makeChatTurns(10));
          const longs: number[] = [];
          const tens: number[] = [];
          for (let run = 0; run <= context.sizes.runs; run++) {
            const at = (sessionId: string, atSeq: number) => (index: number) =>
              fork(server.client, {
                sessionId,
                atSeq,
                newSessionId: `${sessionId}-${run}-${index}`,
              });
            const longMs = await medianTime(forks, at(LONG, messages));
            const tenMs = await medianTime(forks, at(TEN, 10));
            if (run === 0) continue;
            longs.push(longMs);
            tens.push(tenMs);
          }
          return [
            row(
              13,
              `Fork at the end, session of ${messages.toLocaleString("en-US")} vs of 10`,
              "ms",
              longs,
              {
                baseline: { label: "session of 10", runs: tens },
                target: { on: "ratio", op: "<=", limit: 2 },
              },
            ),
          ];
        }),
    },
    {
      id: 14,
      title: `List newest first with a label selector, many sessions vs few${on}`,
      async run(context) {
        const { sessions, fewSessions, matching, listCalls } = context.sizes.agent;
        const listAt = (count: number) =>
          withServer(context, start, 14, async (server) => {
            context.log(`  creating ${count.toLocaleString("en-US")} labelled sessions`);
            const every = Math.floor(count / matching);
            await appendPipelined(
              server.client,
              Array.from({ length: count }, (_, index) => ({
                sessionId: `chat-${index}`,
                messages: takeMessages(context.payloads, index, 1),
                labels: { user: index % every === 0 ? "alice" : `user-${index}` },
              })),
            );
            await flush(server.client, "");
            const found = (await listNewest(server.client, "user=alice")).sessions.length;
            if (found !== matching) throw new Error(`List found ${found} of alice's sessions`);
            const times: number[] = [];
            for (let run = 0; run < context.sizes.runs; run++) {
              times.push(
                await medianTime(listCalls, () => listNewest(server.client, "user=alice")),
              );
            }
            return times;
          });
        const many = await listAt(sessions);
        const few = await listAt(fewSessions);
        return [
          row(
            14,
            `List by update time, user=alice (${matching} sessions), ${sessions.toLocaleString("en-US")} sessions vs ${fewSessions}`,
            "ms",
            many,
            {
              baseline: { label: `${fewSessions} sessions`, runs: few },
              target: { on: "ratio", op: "<=", limit: 3 },
            },
          ),
        ];
      },
    },
  ];
}
