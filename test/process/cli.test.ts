import { readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { packageVersion } from "../../src/version.js";
import { runCli, startChildServer } from "../helpers/child-server.js";
import { makeTempDir, startTestServer } from "../helpers/test-server.js";

const PACKAGE = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));

/** Listens on a free loopback port, as another program would; resolves to its host:port. */
async function occupyPort(): Promise<{ address: string; close(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the sessionstore command", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it.each(["--version", "serve --version"])(
    "`sessionstore %s` prints the package's version",
    async (command) => {
      const run = await runCli(command.split(" "));
      expect(run).toEqual({ code: 0, stdout: `${PACKAGE.version}\n`, stderr: "" });
    },
  );

  it("finds the version from the sources too (the CLI above runs from dist/)", () => {
    expect(packageVersion()).toBe(PACKAGE.version);
  });

  it("on a port in use, says so in one line, exits 1 and leaves the data directory free", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const taken = await occupyPort();
    cleanups.push(() => taken.close());

    const run = await runCli(["serve", "--listen", taken.address, "--data-dir", dataDir]);
    expect(run.code).toBe(1);
    expect(run.stderr.split("\n")).toEqual([
      `sessionstore: failed to start: cannot listen on ${taken.address}: the address is already ` +
        "in use (is another server running?); stop that process or pass another --listen " +
        "(port 0 picks a free one)",
      "",
    ]);
    // grpc-js's own report of it is a debug log line, not raw text.
    expect(run.stdout).not.toMatch(/No address added/);
    const server = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(async () => server.process.kill("SIGKILL"));
    server.client.close();
  });

  it("on a port in use, starting the service releases the data directory's lock before it rejects", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const taken = await occupyPort();
    cleanups.push(() => taken.close());

    await expect(startTestServer({ dataDir, listen: taken.address })).rejects.toThrow(
      `cannot listen on ${taken.address}: the address is already in use`,
    );
    // In the same process, where the lock would still be held had the failure not released it.
    const server = await startTestServer({ dataDir });
    cleanups.push(() => server.stop());
  });
});
