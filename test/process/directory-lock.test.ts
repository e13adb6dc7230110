import { rm } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { startChildServer } from "../helpers/child-server.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

describe("one server per data directory", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("refuses a second server on the same directory, and not after the first is killed", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(async () => first.process.kill("SIGKILL"));
    await append(first.client, [{ sessionId: "kept", messages: ['{"a":1}'], sync: true }]);
    first.client.close();

    const second = startChildServer(["--data-dir", dataDir]);
    await expect(second).rejects.toThrow(
      new RegExp(`in use by another sessionstore server \\(pid ${first.process.pid}\\)`),
    );

    // The lock dies with its process: a crash does not block the next start.
    first.process.kill("SIGKILL");
    await first.exited;
    const third = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(async () => third.process.kill("SIGKILL"));
    expect((await loadAll(third.client, "kept")).messages).toEqual(['{"a":1}']);
    third.client.close();
  });

  it("lets servers on different directories run side by side", async () => {
    const dirs = [await makeTempDir(), await makeTempDir()];
    for (const dir of dirs) cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const servers = await Promise.all(dirs.map((dir) => startChildServer(["--data-dir", dir])));
    for (const server of servers) {
      cleanups.push(async () => server.process.kill("SIGKILL"));
      await append(server.client, [{ sessionId: "s", messages: ['{"ok":true}'] }]);
      server.client.close();
    }
  });
});
