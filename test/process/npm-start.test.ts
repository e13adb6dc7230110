import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ChildServer, startWithNpm } from "../helpers/child-server.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error; // ESRCH: none left
  }
}

/** The README's first command, `npm start`: build, serve, stop on Ctrl-C without losing data. */
describe("npm start", () => {
  let dataDir: string | undefined;
  let server: ChildServer | undefined;
  afterEach(async () => {
    server?.client.close();
    // The whole group, should a process of it outlive the test (npm may have exited already).
    if (server?.process.pid !== undefined) killGroup(server.process.pid);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("serves with the settings of the environment, and Ctrl-C stops the server gracefully", async () => {
    dataDir = await makeTempDir();
    server = await startWithNpm({
      SESSIONSTORE_LISTEN: "127.0.0.1:0",
      SESSIONSTORE_DATA_DIR: dataDir,
    });
    const running = server;
    await append(running.client, [{ sessionId: "via-npm-start", messages: ['{"n":1}'] }]);
    expect((await loadAll(running.client, "via-npm-start")).messages).toEqual(['{"n":1}']);

    // Ctrl-C in a terminal signals the foreground process group: npm, its shell and the server.
    // (How npm itself exits on a signal is not this test's concern.)
    const outputClosed = new Promise((resolve) => running.process.stdout?.on("close", resolve));
    const group = running.process.pid;
    if (group === undefined) throw new Error("npm has no pid");
    process.kill(-group, "SIGINT");
    await outputClosed; // every process of the group, the server included, has exited
    expect(running.logs.map((entry) => entry.msg)).toContain(
      "sessionstore stopped; every buffer is written and fsynced",
    );
    const file = await readFile(join(dataDir, "via-npm-start.jsonl"), "utf8");
    expect(file.endsWith('\n{"n":1}\n')).toBe(true);
  });
});
