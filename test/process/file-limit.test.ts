import { rm } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { startChildServer } from "../helpers/child-server.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// Node's module loader opens the server's modules in parallel at start: 64 descriptors no longer
// leave it room (it fails with EMFILE before listening); 80 do, and the pool's 16 stay far below.
it("serves far more sessions than it may open files (ulimit -n 80, 400 sessions)", async () => {
  const dataDir = await makeTempDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startChildServer(
    ["--data-dir", dataDir, "--max-open-files", "16"],
    {},
    { maxFileDescriptors: 80 },
  );
  cleanups.push(async () => server.process.kill("SIGKILL"));
  const ids = Array.from({ length: 400 }, (_, i) => `many-${i}`);
  for (let round = 0; round < 2; round++) {
    await append(
      server.client,
      ids.map((sessionId) => ({
        sessionId,
        messages: [`{"id":"${sessionId}","round":${round}}`],
        sync: true,
      })),
    );
  }
  for (const sessionId of ids.filter((_, i) => i % 7 === 0)) {
    expect((await loadAll(server.client, sessionId)).messages).toEqual([
      `{"id":"${sessionId}","round":0}`,
      `{"id":"${sessionId}","round":1}`,
    ]);
  }
  server.client.close();
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);
});
