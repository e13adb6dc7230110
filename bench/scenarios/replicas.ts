import { credentials } from "@grpc/grpc-js";
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
