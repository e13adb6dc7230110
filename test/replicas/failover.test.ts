import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MessageAck, SessionStoreClient } from "../../clients/ts/src/index.js";
import { healthClient } from "../helpers/health.js";
import { type Nginx, nginxBinary, startNginx } from "../helpers/nginx.js";
import { testDatabases } from "../helpers/postgres.js";
import { Replicas } from "../helpers/replicas.js";
import { skipWithReason } from "../helpers/skipped-suites.js";

const databases = testDatabases();
const missing =
  databases.missing ??
  (nginxBinary() ? undefined : "nginx is not installed (scripts/setup-servers.sh installs it)");

const WRITERS = 4;
const MESSAGES = 400;

/** Every message of a session through the balancer, parsed. */
async function logOf(client: SessionStoreClient, sessionId: string): Promise<unknown[]> {
  const messages: unknown[] = [];
  for await (const { message } of client.load(sessionId)) messages.push(message);
  return messages;
}

/**
 * Replicas killed, drained and recycled under writers that go through nginx: the TypeScript
 * client's appender reconnects through the balancer, and every session ends with every
 * acknowledged message exactly once, in order.
 */
describe("replicas dying and draining behind nginx", skipWithReason(missing), () => {
  let replicas: Replicas;
  let nginx: Nginx;
  let client: SessionStoreClient;

  beforeAll(async () => {
    replicas = await Replicas.start(3, await databases.create(), [
      "--drain-delay-ms",
      "400",
      "--max-connection-age-ms",
      "1500",
      "--max-connection-age-grace-ms",
      "500",
    ]);
    nginx = await startNginx(replicas.addresses);
    client = new SessionStoreClient(nginx.address, {
      retry: { maxAttempts: 50, initialDelayMs: 50, maxDelayMs: 500 },
    });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await nginx?.stop();
    await replicas?.stopAll();
  });

  it("keeps every acknowledged durable message exactly once through a SIGKILL, a drain and recycled connections", async () => {
    let acked = 0;
    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      const appender = client.appender(`writer-${writer}`, { sync: true });
      const acks: Promise<MessageAck>[] = [];
      for (let n = 0; n < MESSAGES; n++) {
        await appender.ready();
        const ack = appender.write({ writer, n });
        ack.then(
          () => {
            acked++;
          },
          () => undefined, // the test awaits every ack below
        );
        acks.push(ack);
        if (n % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await appender.close();
      return Promise.all(acks);
    });
    const until = async (count: number) => {
      while (acked < count) await new Promise((resolve) => setTimeout(resolve, 10));
    };

    await until(300);
    await replicas.kill(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await replicas.restart(0);

    await until(700);
    const draining = healthClient(replicas.addresses[1] as string);
    const stopped = replicas.terminate(1);
    // While it drains it still answers, and says NOT_SERVING so balancers move on.
    await expect
      .poll(() => draining.check().then((r) => r.status), { timeout: 2000 })
      .toBe("NOT_SERVING");
    draining.close();
    expect(await stopped).toBe(0);
    await replicas.restart(1);

    const results = await Promise.all(writers);
    for (const [writer, acks] of results.entries()) {
      expect(acks.map((ack) => ack.seq)).toEqual([...Array(MESSAGES).keys()]);
      const log = await logOf(client, `writer-${writer}`);
      expect(log).toEqual(Array.from({ length: MESSAGES }, (_, n) => ({ writer, n })));
      const meta = await client.meta(`writer-${writer}`);
      expect(meta?.durableCount).toBe(MESSAGES);
    }
  }, 120_000);
});
