import { type ChildProcess, spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { CLI, sessionstore } from "../helpers/operator-cli.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { Terminal, tmuxMissing } from "../helpers/terminal.js";
import { append, makeTempDir, unaryRpcs } from "../helpers/test-server.js";

const message = (n: number) => `{"role":"user","content":"message ${n}"}`;

/** `sessionstore tail ...` running piped; its stdout lines as they come. */
function follow(
  address: string,
  args: string[],
): { child: ChildProcess; lines: string[]; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, "tail", ...args], {
    env: { ...process.env, SESSIONSTORE_ADDRESS: address },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let buffered = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, lines, stderr: () => stderr };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("sessionstore tail", { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const stopServer = async (server: ChildServer) => {
    server.client.close();
    server.process.kill("SIGTERM");
    await server.exited;
  };

  it("without -f prints the last -n messages; -f follows, through a server restart, each message once", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let server = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(() => stopServer(server));
    await append(server.client, [{ sessionId: "t", messages: [0, 1, 2, 3].map(message) }]);

    const last = await sessionstore(server.address, ["tail", "-n", "2", "t"]);
    expect(last).toMatchObject({ code: 0, stdout: `${message(2)}\n${message(3)}\n` });

    const tail = follow(server.address, ["-f", "t", "--from", "1"]);
    cleanups.push(async () => tail.child.kill("SIGKILL"));
    await until(() => tail.lines.length === 3, "the backlog");
    await append(server.client, [{ sessionId: "t", messages: [message(4)], sync: true }]);
    await until(() => tail.lines.length === 4, "a new message");

    // The server goes away and comes back on the same address: tail goes on from seq 5.
    const { address } = server;
    await stopServer(server);
    await until(() => tail.stderr().includes("reconnecting from seq 5"), "the reconnect notice");
    server = await startChildServer(["--data-dir", dataDir, "--listen", address]);
    await append(server.client, [{ sessionId: "t", messages: [message(5), message(6)] }]);
    await until(() => tail.lines.length === 6, "the messages after the restart");
    expect(tail.lines).toEqual([1, 2, 3, 4, 5, 6].map(message));

    // A rewind is said on stderr, and followed.
    await unaryRpcs(server.client).rewind({ sessionId: "t", toSeq: 5 });
    await until(() => tail.stderr().includes("t was rewound to seq 5"), "the rewind notice");
    await append(server.client, [{ sessionId: "t", messages: [message(7)] }]);
    await until(() => tail.lines.length === 7, "the message after the rewind");
    expect(tail.lines.at(-1)).toBe(message(7));
  });

  it("tail --json gives each message with its seq; an unknown session is exit 3", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(() => stopServer(server));
    await append(server.client, [{ sessionId: "j", messages: [message(0), message(1)] }]);
    const run = await sessionstore(server.address, ["tail", "j", "--json"]);
    expect(
      run.stdout
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { seq: 0, message: { role: "user", content: "message 0" } },
      { seq: 1, message: { role: "user", content: "message 1" } },
    ]);
    expect((await sessionstore(server.address, ["tail", "-f", "nope"])).code).toBe(3);
  });

  describe("in a terminal", skipWithReason(tmuxMissing()), () => {
    it("tail -f shows new messages under their role as they come, until ^C", async () => {
      const dataDir = await makeTempDir();
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const server = await startChildServer(["--data-dir", dataDir]);
      cleanups.push(() => stopServer(server));
      await append(server.client, [{ sessionId: "w", messages: [message(0)] }]);
      const terminal = await Terminal.start([process.execPath, CLI, "tail", "-f", "w"], {
        SESSIONSTORE_ADDRESS: server.address,
      });
      cleanups.push(() => terminal.close());
      await terminal.waitFor("#0 user\n    message 0");
      await append(server.client, [
        { sessionId: "w", messages: ['{"role":"assistant","content":"an answer"}'] },
      ]);
      await terminal.waitFor("#1 assistant\n    an answer");
      await terminal.keys("C-c");
      const { code } = await terminal.exited();
      expect(code).toBe(130);
    });
  });
});
