import { rm } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import {
  EMPTY_SETTINGS_FRAME,
  HTTP2_MAGIC,
  openFileDescriptors,
  openSilentConnections,
} from "../helpers/raw-connections.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(
  args: string[],
  options: { maxFileDescriptors?: number } = {},
): Promise<{ server: ChildServer; fds: () => number }> {
  const server = await startChildServer(args, {}, options);
  cleanups.push(() => {
    server.client.close();
    server.process.kill("SIGKILL");
  });
  const pid = server.process.pid as number;
  return { server, fds: () => openFileDescriptors(pid) };
}

const HANDSHAKE = Buffer.concat([HTTP2_MAGIC, EMPTY_SETTINGS_FRAME]);

it.each([
  {
    client: "sends nothing",
    bytes: Buffer.alloc(0),
    args: ["--handshake-timeout-ms", "300"],
  },
  {
    client: "sends only the HTTP/2 preface magic",
    bytes: HTTP2_MAGIC,
    args: ["--handshake-timeout-ms", "300"],
  },
  {
    client: "completes the handshake, opens no call and ignores GOAWAY",
    bytes: HANDSHAKE,
    args: ["--max-connection-idle-ms", "300", "--handshake-timeout-ms", "300"],
  },
  {
    client: "completes the handshake and never answers a ping",
    bytes: HANDSHAKE,
    args: [
      ...["--max-connection-idle-ms", "0", "--keepalive-time-ms", "200"],
      ...["--keepalive-timeout-ms", "200"],
    ],
  },
])(
  "closes connections whose client $client, releasing their file descriptors",
  async ({ bytes, args }) => {
    const { server, fds } = await start(["--storage", "memory", ...args]);
    const baseline = fds();
    const silent = await openSilentConnections(server.address, 50, bytes);
    cleanups.push(() => silent.destroy());
    await expect.poll(fds, { timeout: 2000, interval: 20 }).toBeGreaterThanOrEqual(baseline + 50);
    // The clients keep their side open: only the server closing its sockets brings the count down.
    await expect.poll(fds, { timeout: 3000, interval: 50 }).toBeLessThanOrEqual(baseline + 1);
  },
);

// 80 descriptors, not fewer: Node's module loader opens the server's modules in parallel at start.
it("keeps opening session files while 500 silent connections arrive (ulimit -n 80)", async () => {
  const dataDir = await makeTempDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const maxConnections = 16;
  const { server, fds } = await start(
    [
      ...["--data-dir", dataDir, "--max-open-files", "8"],
      ...["--max-connections", String(maxConnections), "--handshake-timeout-ms", "500"],
    ],
    { maxFileDescriptors: 80 },
  );
  const baseline = fds();
  const silent = await openSilentConnections(server.address, 500);
  cleanups.push(() => silent.destroy());
  // Past --max-connections they are closed as they come, so sockets never crowd out files...
  expect(fds()).toBeLessThanOrEqual(baseline + maxConnections + 1);
  // ...and the ones let in are closed at the handshake timeout.
  await expect.poll(fds, { timeout: 3000, interval: 50 }).toBeLessThanOrEqual(baseline + 1);

  const ids = Array.from({ length: 40 }, (_, i) => `after-flood-${i}`);
  await append(
    server.client,
    ids.map((sessionId) => ({ sessionId, messages: [`{"id":"${sessionId}"}`], sync: true })),
  );
  for (const sessionId of ids.filter((_, i) => i % 9 === 0)) {
    expect((await loadAll(server.client, sessionId)).messages).toEqual([`{"id":"${sessionId}"}`]);
  }
});
