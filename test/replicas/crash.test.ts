import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MessageAck, SessionStoreClient } from "../../clients/ts/src/index.js";
import { type Nginx, nginxBinary, startNginx } from "../helpers/nginx.js";
import { testDatabases } from "../helpers/postgres.js";
import { between, mulberry32 } from "../helpers/random.js";
import { Replicas } from "../helpers/replicas.js";
import { skipWithReason } from "../helpers/skipped-suites.js";

const databases = testDatabases();
const missing =
  databases.missing ??
  (nginxBinary() ? undefined : "nginx is not installed (scripts/setup-servers.sh installs it)");

/**
 * Replay a failure with the seed it printed: SESSIONSTORE_REPLICA_CRASH_SEED=<seed> npx vitest
 * run test/replicas/crash.test.ts (SESSIONSTORE_REPLICA_CRASH_ROUNDS raises the number of kills).
 * The seed fixes which replica dies and when, and how the writers pace themselves; timing
 * beyond that is the machine's.
 */
const SEED = Number(process.env.SESSIONSTORE_REPLICA_CRASH_SEED ?? 2_071_940_117);
const ROUNDS = Number(process.env.SESSIONSTORE_REPLICA_CRASH_ROUNDS ?? 10);
const WRITERS = 5;

describe(
  "crash: SIGKILL of random replicas under durable writers behind nginx",
  skipWithReason(missing),
  () => {
    let replicas: Replicas;
    let nginx: Nginx;
    let client: SessionStoreClient;

    beforeAll(async () => {
      replicas = await Replicas.start(3, await databases.create());
      nginx = await startNginx(replicas.addresses);
      client = new SessionStoreClient(nginx.address, {
        retry: { maxAttempts: 100, initialDelayMs: 20, maxDelayMs: 300 },
      });
    }, 60_000);

    afterAll(async () => {
      client?.close();
      await nginx?.stop();
      await replicas?.stopAll();
    });

    it(`keeps every acknowledged message, once and in order, across ${ROUNDS} kills (seed ${SEED})`, async () => {
      console.log(
        `replica crash test: seed ${SEED} (replay: SESSIONSTORE_REPLICA_CRASH_SEED=${SEED}), ${ROUNDS} rounds`,
      );
      const random = mulberry32(SEED);
      const started = Date.now();
      let stop = false;
      const acked = new Map<number, number>();
      const writers = Array.from({ length: WRITERS }, async (_, writer) => {
        const pace = mulberry32(SEED + writer + 1);
        const appender = client.appender(`crash-${writer}`, { sync: true });
        const acks: Promise<MessageAck>[] = [];
        for (let n = 0; !stop; n++) {
          await appender.ready();
          const ack = appender.write({ writer, n });
          ack.then(
            () => acked.set(writer, (acked.get(writer) ?? 0) + 1),
            () => undefined, // every ack is awaited below
          );
          acks.push(ack);
          if (pace() < 0.2)
            await new Promise((resolve) => setTimeout(resolve, between(pace, 1, 10)));
        }
        await appender.close();
        return Promise.all(acks);
      });

      for (let round = 0; round < ROUNDS; round++) {
        await new Promise((resolve) => setTimeout(resolve, between(random, 50, 400)));
        const victim = between(random, 0, 2);
        await replicas.kill(victim);
        await new Promise((resolve) => setTimeout(resolve, between(random, 0, 300)));
        await replicas.restart(victim);
      }
      stop = true;
      const results = await Promise.all(writers);

      let total = 0;
      for (const [writer, acks] of results.entries()) {
        // Every write acknowledged, at the seq it was written in.
        expect(acks.map((ack) => ack.seq)).toEqual([...acks.keys()]);
        for (const ack of acks) expect(ack.seq).toBeLessThan(ack.durableCount);
        const log: unknown[] = [];
        for await (const { message } of client.load(`crash-${writer}`)) log.push(message);
        expect(log).toEqual(acks.map((_, n) => ({ writer, n })));
        total += acks.length;
      }
      console.log(
        `replica crash test: seed ${SEED}, ${ROUNDS} kills in ${Date.now() - started} ms; ` +
          `${total} durable acks from ${WRITERS} writers, every one stored once, in order`,
      );
    }, 180_000);
  },
);
