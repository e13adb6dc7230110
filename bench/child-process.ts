import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { nowMs } from "./stats.js";

/** A server running as a child process, ready: it logged the address it listens on. */
export interface ServerProcess {
  /** The server's own pid (the Node process, also when it runs under strace). */
  pid: number;
  address: string;
  /** From spawn to the "listening" log line, in milliseconds. */
  startupMs: number;
  /** Log lines (parsed JSON) printed so far. */
  logs: Record<string, unknown>[];
  /**
   * Stops the server and waits for its process (and a wrapper such as strace) to exit: SIGTERM,
   * which shuts down gracefully, or SIGKILL when `kill` (nothing to flush worth waiting for).
   */
  stop(options?: { kill?: boolean }): Promise<void>;
}

const STOP_TIMEOUT_MS = 60_000;

/** Pids of the servers started and not yet stopped. */
const running = new Set<number>();

/**
 * Spawns `command` and waits for the JSON log line whose `msg` is `readyMessage`; that line must
 * carry `address`. With `wrapped`, the command is a wrapper (strace) that runs the server as its
 * only child.
 */
export async function spawnServer(
  command: readonly string[],
  readyMessage: string,
  options: { wrapped?: boolean } = {},
): Promise<ServerProcess> {
  const [file, ...args] = command;
  const started = nowMs();
  const child = spawn(file as string, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<string>((resolve) =>
    child.on("close", (code, signal) => resolve(String(code ?? signal))),
  );
  const logs: Record<string, unknown>[] = [];
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === readyMessage) {
        resolve(String(entry.address));
      }
    });
    child.on("error", reject);
    void exited.then((code) =>
      reject(new Error(`${command.join(" ")} exited (${code}) before listening:\n${stderr}`)),
    );
  });
  const startupMs = nowMs() - started;
  const pid = options.wrapped ? onlyChild(child.pid as number) : (child.pid as number);
  let stopping: Promise<void> | undefined;
  const server: ServerProcess = {
    pid,
    address,
    startupMs,
    logs,
    stop(stopOptions = {}) {
      stopping ??= stopChild(child, pid, exited, stopOptions.kill === true).finally(() =>
        running.delete(pid),
      );
      return stopping;
    },
  };
  running.add(pid);
  return server;
}

/** The pid of the one child process of `pid` (Linux). */
function onlyChild(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
  if (children.length !== 1 || children[0] === "") {
    throw new Error(`expected process ${pid} to have one child, found: ${children.join(" ")}`);
  }
  return Number(children[0]);
}

async function stopChild(
  child: ChildProcess,
  pid: number,
  exited: Promise<string>,
  kill: boolean,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  signal(pid, kill ? "SIGKILL" : "SIGTERM");
  const timeout = setTimeout(() => signal(pid, "SIGKILL"), STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timeout);
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Kills every server still running (synchronously: usable from an exit handler). */
export function killAll(): void {
  for (const pid of running) signal(pid, "SIGKILL");
  running.clear();
}
