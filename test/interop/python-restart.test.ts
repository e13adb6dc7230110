import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { append, loadAll, startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The Python clients, sync and asyncio, across a server restart: clients/python/tests/restart.py
 * appends through the appender, watches, or calls each retried call while this test stops the
 * server and starts it again on the same port and data directory (as a deploy does). Every
 * message appended is stored once, in order; a watch yields every message once; the calls that
 * are retried wait for the server, and an append without expected_seq is not retried. Skipped
 * without the Python toolchain, as test/interop/python-aio.test.ts is.
 */

const missing = missingToolchains("python");
const PROGRAM = join(REPOSITORY, "clients/python/tests/restart.py");

/** A running restart.py: the lines it printed so far, and its end. */
interface Program {
  lines: string[];
  /** Resolves once it printed `count` lines (rejects if it exits first). */
  printed(count: number): Promise<void>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function start(args: string[]): Program {
  const child = spawn(PYTHON, [PROGRAM, ...args], {
    env: { ...process.env, PYTHONUTF8: "1", PYTHONPATH: join(REPOSITORY, "clients/python/src") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  const waiters: { count: number; resolve(): void }[] = [];
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => lines.length >= w.count)) waiter.resolve();
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  );
  const printed = (count: number) =>
    new Promise<void>((resolve, reject) => {
      if (lines.length >= count) resolve();
      waiters.push({ count, resolve });
      void exited.then(({ code }) =>
        reject(new Error(`restart.py exited (${code}) after ${lines.length} lines: ${stderr}`)),
      );
    });
  return { lines, printed, exited };
}

async function succeeded(program: Program): Promise<string[]> {
  const { code, stderr } = await program.exited;
  expect(code, stderr).toBe(0);
  return program.lines;
}

const servers: TestServer[] = [];
afterEach(async () => {
  // Every server first: a restarted one shares its predecessor's data directory, which closing
  // that one removes.
  const closing = servers.splice(0);
  await Promise.all(closing.map((server) => server.stop()));
  await Promise.all(closing.map((server) => server.close()));
});

async function server(restartOf?: TestServer): Promise<TestServer> {
  const started = await startTestServer(
    restartOf ? { dataDir: restartOf.dataDir, listen: restartOf.server.address } : {},
  );
  servers.push(started);
  return started;
}

/** Stops `first` and starts a server on its port and data; resolves to the new one. */
async function restart(first: TestServer): Promise<TestServer> {
  await first.stop();
  return server(first);
}

const messages = (from: number, count: number) =>
  Array.from({ length: count }, (_, offset) => JSON.stringify({ n: from + offset }));

describe.each([
  ["sync", []],
  ["asyncio", ["--aio"]],
])("the Python %s client across a server restart", skipWithout(missing), (_, flag) => {
  it("appends N messages through the appender while the server restarts: N stored, in order, once", async () => {
    requireTools(missing);
    const first = await server();
    const count = 300;
    const program = start([...flag, first.server.address, "append", "appended", String(count)]);
    await program.printed(40);
    const second = await restart(first);
    // The restart came in the middle: the rest went to the second server.
    expect(program.lines.length).toBeLessThan(count);
    const acknowledged = await succeeded(program);
    expect(acknowledged).toEqual(Array.from({ length: count }, (_, seq) => String(seq)));
    expect((await loadAll(second.client, "appended")).messages).toEqual(messages(0, count));
  }, 60_000);

  it("a watch across the restart yields every message exactly once", async () => {
    requireTools(missing);
    const first = await server();
    await append(first.client, [{ sessionId: "watched", messages: messages(0, 5) }]);
    const program = start([...flag, first.server.address, "watch", "watched", "10"]);
    await program.printed(5);
    const second = await restart(first);
    await append(second.client, [{ sessionId: "watched", messages: messages(5, 5) }]);
    const yielded = (await succeeded(program)).map((line) => JSON.parse(line));
    expect(yielded).toEqual(Array.from({ length: 10 }, (_, seq) => [seq, { n: seq }]));
  }, 60_000);

  it("retries what is safe to retry until the server is back, and not an append without expected_seq", async () => {
    requireTools(missing);
    const first = await server();
    await append(first.client, [{ sessionId: "read", messages: messages(0, 3) }]);
    await first.stop();
    const program = start([...flag, first.server.address, "reads", "read"]);
    await program.printed(1);
    expect(program.lines[0]).toBe("down");
    await new Promise((resolve) => setTimeout(resolve, 300)); // the retried calls wait meanwhile
    await server(first);
    const [, report] = await succeeded(program);
    expect(JSON.parse(report ?? "")).toEqual({
      unretried_append: "UNAVAILABLE",
      meta: 3,
      load: [{ n: 0 }, { n: 1 }, { n: 2 }],
      messages: [
        [1, { n: 1 }],
        [2, { n: 2 }],
      ],
      last: [{ n: 1 }, { n: 2 }],
      load_window: 1,
      list: ["read"],
      append: 3,
      set_labels: { after: "restart" },
      flush: expect.any(Number),
      flush_all_failures: [],
    });
  }, 60_000);
});
