import { credentials } from "@grpc/grpc-js";
import pg from "pg";
import { SessionStoreClient, type WatchResponse } from "../../gen/sessionstore/v1/session_store.js";
import { startNginx } from "../../test/helpers/nginx.js";
import { Replicas } from "../../test/helpers/replicas.js";
import { type AppendLoad, driveAppend } from "../append-load.js";
import { type BenchContext, row, type Scenario, sessionIds } from "../context.js";
import type { Row } from "../report.js";
import { Appender } from "../sessionstore.js";
import { median, nowMs, percentile } from "../stats.js";
import { freshDatabase } from "./postgres.js";

/**
 * Many replicas on one PostgreSQL, with `npm run bench -- --storage postgres`: throughput
 * through nginx with one and three replicas and straight to one (the balancer's cost), and how
 * long a message acknowledged by one replica takes to reach a watcher on another.
 */
export const REPLICA_SCENARIOS: readonly Scenario[] = [
  {
    id: 9,
    title: "throughput through nginx, 1 and 3 replicas, and direct (PostgreSQL)",
    run: throughput,
  },
  {
    id: 10,
    title: "watch delay from an ack on one replica to delivery on another (PostgreSQL)",
    run: watchDelay,
  },
  {
    id: 11,
    title: "the capacity model's workload: many agents, 1 durable message per request (PostgreSQL)",
    run: agentsWorkload,
  },
];

async function throughput(context: BenchContext): Promise<Row[]> {
  const { streams, window, requestsPerStream } = context.sizes.streaming;
  const load = (prefix: string): AppendLoad => ({
    sessionIds: sessionIds(prefix, streams),
    requestsPerStream,
    messagesPerRequest: 100,
    window,
    sync: false,
    payloads: context.payloads,
  });
  const rate = async (count: number, viaBalancer: boolean): Promise<number[]> => {
    const replicas = await Replicas.start(count, await freshDatabase(context));
    const nginx = viaBalancer ? await startNginx(replicas.addresses) : undefined;
    const client = new SessionStoreClient(
      nginx?.address ?? (replicas.addresses[0] as string),
      credentials.createInsecure(),
    );
    try {
      await driveAppend(client, load("warmup"));
      const rates: number[] = [];
      for (let run = 0; run < context.sizes.runs; run++) {
        rates.push((await driveAppend(client, load(`run-${run}`))).messagesPerSecond);
      }
      context.log(
        `  ${count} replica(s) ${viaBalancer ? "through nginx" : "direct"}: ${Math.round(median(rates)).toLocaleString("en-US")} msgs/s`,
      );
      return rates;
    } finally {
      client.close();
      await nginx?.stop();
      await replicas.stopAll();
    }
  };
  const direct = await rate(1, false);
  const one = await rate(1, true);
  const three = await rate(3, true);
  const shape = `${streams} streams, 100 messages per request, ${window} in flight, buffered`;
  return [
    row(9, `append msgs/s through nginx, 1 replica vs straight to it (${shape})`, "msgs/s", one, {
      baseline: { label: "straight to the replica", runs: direct },
      note: "the balancer's cost: one more HTTP/2 hop, in the same machine's CPU",
    }),
    row(9, "append msgs/s through nginx, 3 replicas vs 1", "msgs/s", three, {
      baseline: { label: "1 replica through nginx", runs: one },
      note: "all on one 2-core machine with PostgreSQL and the bench: replicas share its CPU, so this shows no scaling, only that spreading costs little",
    }),
  ];
}

async function watchDelay(context: BenchContext): Promise<Row[]> {
  const samples = context.mode === "full" ? 500 : 100;
  const replicas = await Replicas.start(2, await freshDatabase(context));
  const [writerAddress, watcherAddress] = replicas.addresses as [string, string];
  const writer = new SessionStoreClient(writerAddress, credentials.createInsecure());
  const watcher = new SessionStoreClient(watcherAddress, credentials.createInsecure());
  const delays: number[] = [];
  try {
    const arrivals = new Map<number, number>();
    const call = watcher.watch({ sessionId: "delay", fromSeq: 0 });
    call.on("data", (page: WatchResponse) => {
      const at = nowMs();
      for (let i = 0; i < page.messages.length; i++) arrivals.set(page.firstSeq + i, at);
    });
    call.on("error", () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const appender = new Appender(writer);
    for (let seq = 0; seq < samples; seq++) {
      const ack = await appender.append({
        sessionId: "delay",
        messages: [`{"seq":${seq}}`],
        sync: seq % 2 === 0,
      });
      const acked = nowMs();
      while (!arrivals.has(ack.firstSeq)) await new Promise((resolve) => setImmediate(resolve));
      delays.push(Math.max(0, (arrivals.get(ack.firstSeq) as number) - acked));
      // Light load: one message every 10 ms.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await appender.end();
    call.cancel();
  } finally {
    writer.close();
    watcher.close();
    await replicas.stopAll();
  }
  return [
    row(
      10,
      "watch delay p50, ack on replica A to delivery on replica B",
      "ms",
      [percentile(delays, 50)],
      {
        note: `${samples} messages, one every 10 ms, half of them sync; LISTEN/NOTIFY then a read on B`,
      },
    ),
    row(
      10,
      "watch delay p99, ack on replica A to delivery on replica B",
      "ms",
      [percentile(delays, 99)],
      {
        target: { on: "value", op: "<=", limit: 50 },
      },
    ),
  ];
}

/** What the database did meanwhile: commits, WAL and stored bytes (docs/capacity.md uses them). */
interface DatabaseWork {
  commits: number;
  walBytes: number;
  /** Bytes of the sessionstore schema's tables and their indexes. */
  storedBytes: number;
}

async function databaseWork(url: string): Promise<DatabaseWork> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ commits: string; wal: string; stored: string }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS commits,
              pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS wal,
              (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'sessionstore' AND c.relkind = 'r') AS stored`,
    );
    const row = rows[0] as { commits: string; wal: string; stored: string };
    return {
      commits: Number(row.commits),
      walBytes: Number(row.wal),
      storedBytes: Number(row.stored),
    };
  } finally {
    await client.end();
  }
}

/**
 * The workload docs/capacity.md sizes: many agents, each appending one message per request with
 * `sync`, one request in flight each, through nginx to 1 and to 3 replicas: messages per second,
 * commits per second and messages per commit, WAL and stored bytes per message.
 */
async function agentsWorkload(context: BenchContext): Promise<Row[]> {
  const agents = context.mode === "full" ? 512 : 128;
  const requests = context.mode === "full" ? 40 : 5;
  const load = (prefix: string): AppendLoad => ({
    sessionIds: sessionIds(prefix, agents),
    requestsPerStream: requests,
    messagesPerRequest: 1,
    window: 1,
    sync: true,
    payloads: context.payloads,
  });
  const measure = async (count: number) => {
    const url = await freshDatabase(context);
    const replicas = await Replicas.start(count, url);
    const nginx = await startNginx(replicas.addresses);
    const client = new SessionStoreClient(nginx.address, credentials.createInsecure());
    try {
      await driveAppend(client, load("warmup"));
      const before = await databaseWork(url);
      const started = nowMs();
      const result = await driveAppend(client, load("measured"));
      const seconds = (nowMs() - started) / 1000;
      const after = await databaseWork(url);
      const commits = after.commits - before.commits;
      const figures = {
        rate: result.messagesPerSecond,
        commitsPerSecond: commits / seconds,
        perCommit: result.messages / Math.max(1, commits),
        walPerMessage: (after.walBytes - before.walBytes) / result.messages,
        storedPerMessage: after.storedBytes / (2 * result.messages),
        p99: percentile(result.ackLatenciesMs, 99),
      };
      context.log(`  ${count} replica(s): ${JSON.stringify(figures)}`);
      return figures;
    } finally {
      client.close();
      await nginx.stop();
      await replicas.stopAll();
    }
  };
  const one = await measure(1);
  const three = await measure(3);
  const shape = `${agents} agents, 1 message per request, sync, 1 in flight each, through nginx`;
  return [
    row(11, `durable msgs/s, 3 replicas vs 1 (${shape})`, "msgs/s", [three.rate], {
      baseline: { label: "1 replica", runs: [one.rate] },
      note: `ack p99 ${one.p99.toFixed(1)} ms with 1 replica, ${three.p99.toFixed(1)} ms with 3; one machine for replicas, nginx, PostgreSQL and the load`,
    }),
    row(11, "PostgreSQL commits per second, 1 replica", "msgs", [one.commitsPerSecond], {
      note: `${one.perCommit.toFixed(1)} messages per commit; with 3 replicas ${three.commitsPerSecond.toFixed(0)} commits/s, ${three.perCommit.toFixed(1)} messages per commit`,
    }),
    row(11, "WAL bytes per message (1 replica)", "msgs", [one.walPerMessage], {
      note: `stored bytes per message (tables and indexes, warm-up and run): ${one.storedPerMessage.toFixed(0)}; message text ${context.payloads[0]?.length} bytes`,
    }),
  ];
}
