import pg from "pg";
import { type PostgresCluster, startPostgresCluster } from "../../test/helpers/postgres-cluster.js";
import type { AppendLoad, AppendResult } from "../append-load.js";
import { type BenchContext, row, type Scenario, sessionIds } from "../context.js";
import type { Row } from "../report.js";
import {
  freshDir,
  listFirstPage,
  loadCount,
  type SessionStoreProcess,
  startSessionStore,
} from "../sessionstore.js";
import { median, nowMs, timed } from "../stats.js";
import type { StartServer } from "./agent-sessions.js";
import { cpuNote, measureRuns, rates, sessionStoreTarget, type Target } from "./append.js";

/**
 * The scenarios of `npm run bench -- --storage postgres`: the server on a PostgreSQL of its own
 * (a throwaway cluster on this machine), each figure next to a bare PostgreSQL client doing the
 * same work in the same run: the same rows in the same batches with the same commit setting,
 * or the same SELECT.
 */
export const POSTGRES_SCENARIOS: readonly Scenario[] = [
  {
    id: 1,
    title: "append, 100 messages per request, buffered (PostgreSQL)",
    run: (c) => appendVsBare(c, 1, 100),
  },
  {
    id: 2,
    title: "append, 1 message per request, buffered (PostgreSQL)",
    run: (c) => appendVsBare(c, 2, 1),
  },
  { id: 3, title: "durable appends, 64 sessions (PostgreSQL)", run: durableAppends },
  { id: 5, title: "Load of a long session vs a bare SELECT (PostgreSQL)", run: loadVsSelect },
  {
    id: 6,
    title: "the last 100 messages of a long session vs of a short one (PostgreSQL)",
    run: lastHundred,
  },
  { id: 7, title: "List at 100,000 sessions vs 100 (PostgreSQL)", run: listAtScale },
];

let running: Promise<PostgresCluster> | undefined;

/** The run's cluster, started on first use (removed by `stopPostgresBench`). */
function cluster(_context: BenchContext): Promise<PostgresCluster> {
  running ??= startPostgresCluster();
  return running;
}

/** Stops and removes the run's cluster, if one was started. */
export async function stopPostgresBench(): Promise<void> {
  await (await running)?.destroy();
  running = undefined;
}

let databases = 0;

/** A fresh database with the server's schema (a server started on it and stopped). */
export async function freshDatabase(context: BenchContext): Promise<string> {
  return (await cluster(context)).createDatabase(`bench_${databases++}`);
}

/** A server on `databaseUrl`. */
function startOn(
  context: BenchContext,
  databaseUrl: string,
  args: string[] = [],
): Promise<SessionStoreProcess> {
  return startSessionStore({
    dataDir: freshDir(context.workDir, `pg-${databases}`),
    args: [
      "--storage",
      "postgres",
      "--database-url",
      databaseUrl,
      "--database-pool-size",
      "8",
      ...args,
    ],
  });
}

/** A server on a fresh database of its own (the agent-session scenarios make their data). */
export const startOnFreshDatabase: StartServer = async (context) =>
  startOn(context, await freshDatabase(context));

async function withServer<T>(
  context: BenchContext,
  databaseUrl: string,
  use: (server: SessionStoreProcess) => Promise<T>,
  args: string[] = [],
): Promise<T> {
  const server = await startOn(context, databaseUrl, args);
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

async function query<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The baseline of an append load: one connection per stream, each inserting its requests' rows
 * one request per statement (its own transaction), with the commit setting the load asks for,
 * into a table shaped like the server's.
 */
function bareInserts(databaseUrl: string): Target {
  return {
    label: "bare INSERT",
    pid: process.pid,
    async drive(load: AppendLoad): Promise<AppendResult> {
      const clients = await Promise.all(
        load.sessionIds.map(async () => {
          const client = new pg.Client({ connectionString: databaseUrl });
          await client.connect();
          await client.query(`SET synchronous_commit = ${load.sync ? "on" : "off"}`);
          return client;
        }),
      );
      await clients[0]?.query(
        `CREATE TABLE IF NOT EXISTS bare_messages (session_id text COLLATE "C", seq bigint, body text, PRIMARY KEY (session_id, seq))`,
      );
      const latencies: number[] = [];
      const started = nowMs();
      const startedAtEpochMs = Date.now();
      await Promise.all(
        clients.map(async (client, stream) => {
          const sessionId = load.sessionIds[stream] as string;
          for (let request = 0; request < load.requestsPerStream; request++) {
            const bodies = Array.from(
              { length: load.messagesPerRequest },
              (_, i) => load.payloads[(request + i) % load.payloads.length] as string,
            );
            const sent = nowMs();
            await client.query(
              "INSERT INTO bare_messages SELECT $1, $2 + n - 1, body FROM unnest($3::text[]) WITH ORDINALITY AS t(body, n)",
              [sessionId, request * load.messagesPerRequest, bodies],
            );
            latencies.push(nowMs() - sent);
          }
        }),
      );
      const seconds = (nowMs() - started) / 1000;
      await Promise.all(clients.map((client) => client.end()));
      const messages = load.sessionIds.length * load.requestsPerStream * load.messagesPerRequest;
      return {
        messages,
        seconds,
        messagesPerSecond: messages / seconds,
        ackLatenciesMs: latencies,
        startedAtEpochMs,
        endedAtEpochMs: Date.now(),
      };
    },
  };
}

async function appendVsBare(
  context: BenchContext,
  id: number,
  messagesPerRequest: number,
): Promise<Row[]> {
  const sizes = messagesPerRequest === 100 ? context.sizes.streaming : context.sizes.singleMessage;
  const load = (prefix: string, requests: number): AppendLoad => ({
    sessionIds: sessionIds(prefix, sizes.streams),
    requestsPerStream: requests,
    messagesPerRequest,
    window: sizes.window,
    sync: false,
    payloads: context.payloads,
  });
  const url = await freshDatabase(context);
  const server = await withServer(context, url, (s) =>
    measureRuns(context, sessionStoreTarget(s), load, sizes.requestsPerStream),
  );
  const bare = await measureRuns(context, bareInserts(url), load, sizes.requestsPerStream);
  return [
    row(
      id,
      `append msgs/s (${messagesPerRequest} per request, buffered) vs a bare client inserting the same rows, synchronous_commit off`,
      "msgs/s",
      rates(server),
      {
        baseline: { label: "bare INSERT per request", runs: rates(bare) },
        target: { on: "ratio", op: ">=", limit: 0.7 },
        note: `${cpuNote([{ label: "sessionstore", runs: server }])}; the bare client: one connection per stream, one INSERT (transaction) per request, ${sizes.streams} at once`,
      },
    ),
  ];
}

async function durableAppends(context: BenchContext): Promise<Row[]> {
  const { sessions, requestsPerStream, messagesPerRequest, window } = context.sizes.durable;
  const load = (prefix: string, requests: number): AppendLoad => ({
    sessionIds: sessionIds(prefix, sessions),
    requestsPerStream: requests,
    messagesPerRequest,
    window,
    sync: true,
    payloads: context.payloads,
  });
  const url = await freshDatabase(context);
  const commits = async () =>
    Number(
      (
        await query<{ commits: string }>(
          url,
          "SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = current_database()",
        )
      )[0]?.commits,
    );
  const perCommit: number[] = [];
  const runs = await withServer(context, url, async (server) => {
    const target = sessionStoreTarget(server, "sessionstore sync");
    const measured = [];
    for (const run of await measureRuns(context, target, load, requestsPerStream))
      measured.push(run);
    return measured;
  });
  // Commits of one more run, counted by the database (a few are the bench's own queries).
  await withServer(context, url, async (server) => {
    const before = await commits();
    const result = await sessionStoreTarget(server).drive(load("count", requestsPerStream));
    perCommit.push(result.messages / Math.max(1, (await commits()) - before));
  });
  const bare = await measureRuns(context, bareInserts(url), load, requestsPerStream);
  const shape = `${sessions} sessions, ${messagesPerRequest} messages per request, ${window} in flight per session`;
  return [
    row(
      3,
      `durable append msgs/s (${shape}) vs a bare client, synchronous_commit on`,
      "msgs/s",
      rates(runs),
      {
        baseline: {
          label: "bare INSERT per request, one connection per session",
          runs: rates(bare),
        },
        note: cpuNote([{ label: "sessionstore", runs }]),
      },
    ),
    row(3, "messages per commit (pg_stat_database)", "msgs", perCommit, {
      baseline: { label: "one commit per request", runs: [messagesPerRequest] },
    }),
  ];
}

/** A database holding a long and a short session, written by SQL directly (not timed). */
function longSessionDatabase(context: BenchContext): Promise<string> {
  return context.once("postgres-long-session", async () => {
    const url = await freshDatabase(context);
    await withServer(context, url, async () => undefined); // applies the schema
    const { messages, shortMessages } = context.sizes.longSession;
    const payload = context.payloads[0] as string;
    for (const [sessionId, count] of [
      ["long", messages],
      ["short", shortMessages],
    ] as const) {
      await query(
        url,
        `WITH s AS (INSERT INTO sessionstore.sessions VALUES ($1, '', $2, $2, 0, 0, 'bench'))
         INSERT INTO sessionstore.messages SELECT $1, '', g, $3 FROM generate_series(0, $2 - 1) g`,
        [sessionId, count, payload],
      );
    }
    await query(url, "VACUUM ANALYZE sessionstore.messages");
    return url;
  });
}

async function loadVsSelect(context: BenchContext): Promise<Row[]> {
  const { messages } = context.sizes.longSession;
  const url = await longSessionDatabase(context);
  const loads: number[] = [];
  const selects: number[] = [];
  await withServer(context, url, async (server) => {
    await loadCount(server.client, { sessionId: "long", limit: 1000 });
    for (let run = 0; run < context.sizes.runs; run++) {
      const { result, ms } = await timed(() => loadCount(server.client, { sessionId: "long" }));
      if (result !== messages)
        throw new Error(`Load returned ${result} messages, expected ${messages}`);
      loads.push(messages / (ms / 1000));
      const bare = await timed(() =>
        query(
          url,
          "SELECT body FROM sessionstore.messages WHERE session_id = 'long' AND tenant = '' ORDER BY seq",
        ),
      );
      selects.push(bare.result.length / (bare.ms / 1000));
      context.log(
        `  run ${run + 1}: Load ${Math.round(loads.at(-1) ?? 0)} msgs/s, SELECT ${Math.round(selects.at(-1) ?? 0)} rows/s`,
      );
    }
  });
  return [
    row(
      5,
      `Load msgs/s, session of ${messages.toLocaleString("en-US")} vs a bare SELECT of its rows`,
      "msgs/s",
      loads,
      {
        baseline: { label: "one SELECT, node-postgres in the bench process", runs: selects },
        target: { on: "ratio", op: ">=", limit: 0.5 },
      },
    ),
  ];
}

async function lastHundred(context: BenchContext): Promise<Row[]> {
  const { messages, shortMessages, lastCalls } = context.sizes.longSession;
  const url = await longSessionDatabase(context);
  const times = { long: [] as number[], short: [] as number[] };
  await withServer(context, url, async (server) => {
    for (const sessionId of ["long", "short"] as const) {
      await loadCount(server.client, { sessionId, limit: 100, last: true });
      for (let call = 0; call < lastCalls; call++) {
        times[sessionId].push(
          (await timed(() => loadCount(server.client, { sessionId, limit: 100, last: true }))).ms,
        );
      }
    }
  });
  return [
    row(
      6,
      `Load of the last 100 messages, session of ${messages.toLocaleString("en-US")} vs of ${shortMessages}`,
      "ms",
      [median(times.long)],
      {
        baseline: { label: `session of ${shortMessages}`, runs: [median(times.short)] },
        target: { on: "ratio", op: "<=", limit: 2 },
      },
    ),
  ];
}

async function listAtScale(context: BenchContext): Promise<Row[]> {
  const { sessions, fewSessions, messagesEach, listCalls } = context.sizes.manySessions;
  const firstPage = async (count: number) => {
    const url = await freshDatabase(context);
    await withServer(context, url, async () => undefined);
    await query(
      url,
      `INSERT INTO sessionstore.sessions
       SELECT 'agent-' || lpad(g::text, 6, '0'), '', $2, $2, 0, 0, 'bench' FROM generate_series(1, $1) g`,
      [count, messagesEach],
    );
    await query(url, "VACUUM ANALYZE sessionstore.sessions");
    return withServer(context, url, async (server) => {
      await listFirstPage(server.client);
      const times: number[] = [];
      for (let call = 0; call < listCalls; call++) {
        times.push((await timed(() => listFirstPage(server.client))).ms);
      }
      return median(times);
    });
  };
  const many = await firstPage(sessions);
  const few = await firstPage(fewSessions);
  return [
    row(
      7,
      `List first page (100 sessions), ${sessions.toLocaleString("en-US")} sessions vs ${fewSessions}`,
      "ms",
      [many],
      {
        baseline: { label: `${fewSessions} sessions`, runs: [few] },
        target: { on: "ratio", op: "<=", limit: 3 },
      },
    ),
  ];
}
