import { type ChildProcess, spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { followServerOutput, startChildServer } from "../helpers/child-server.js";
import { makeTempDir } from "../helpers/test-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Whether a process with this pid exists (a zombie counts: nobody has reaped it yet). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * `npm start -- --listen 127.0.0.1:0 --data-dir <dataDir>` from the repository, in a process group
 * of its own (as a terminal or a process manager runs it), killed whole when the test ends.
 */
function npmStart(dataDir: string): ChildProcess {
  const npm = spawn("npm", ["start", "--", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, npm_config_update_notifier: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    try {
      process.kill(-(npm.pid as number), "SIGKILL"); // what is left of the group: an orphan
    } catch {
      // the group is gone, as it should be
    }
  });
  return npm;
}

describe("npm start, the README's command, on a signal", () => {
  it.each([
    ["SIGTERM", "npm", "a process manager or container runtime sends it"],
    ["SIGINT", "its process group", "a terminal's Ctrl-C sends it"],
  ] as const)(
    "%s to %s, as %s: graceful shutdown, exit 0, no orphan, port and data directory free",
    async (signal, to, _sender) => {
      const dataDir = await makeTempDir();
      onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
      const npm = npmStart(dataDir);
      const output = followServerOutput(npm);
      const { address, pid } = (await output.listening) as { address: string; pid: number };

      const npmPid = npm.pid as number;
      process.kill(to === "npm" ? npmPid : -npmPid, signal);
      expect(await output.exited).toBe(0);
      expect(exists(pid), `the server (pid ${pid}) outlived npm`).toBe(false);
      const said = output.logs.map((entry) => entry.msg);
      expect(said).toContain(
        "closed the data directory; every acknowledged message is written and fsynced",
      );
      expect(said).toContain("sessionstore stopped");

      // Nothing holds the port or the data directory's lock: a new server takes both.
      const next = await startChildServer(["--listen", address, "--data-dir", dataDir]);
      next.client.close();
      next.process.kill("SIGTERM");
      expect(await next.exited).toBe(0);
    },
  );
});
