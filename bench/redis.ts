import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { Socket } from "node:net";
import { findExecutable, freePort } from "./tools.js";

/** How often Redis fsyncs its append-only file: once a second, or before answering each write. */
export type AppendFsync = "everysec" | "always";

/** A redis-server the bench started: loopback only, AOF on, no RDB snapshots. */
export interface RedisProcess {
  port: number;
  pid: number;
  version: string;
  /** Deletes every key (between runs, so memory does not pile up). */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts redis-server, when it is installed (undefined when not), with its append-only file in
 * `dir` fsynced as `appendfsync` says: what Redis offers for durability.
 */
export async function startRedis(
  dir: string,
  appendfsync: AppendFsync,
): Promise<RedisProcess | undefined> {
  const executable = findExecutable("redis-server");
  if (!executable) return undefined;
  const version = execFileSync(executable, ["--version"], { encoding: "utf8" }).trim();
  const port = await freePort();
  const child = spawn(
    executable,
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      appendfsync,
      "--daemonize",
      "no",
      "--logfile",
      "",
    ],
    { stdio: "ignore" },
  );
  const exited = once(child, "exit");
  await waitForPing(port, child);
  return {
    port,
    pid: child.pid as number,
    version,
    flushAll: () => command(port, ["FLUSHALL"]).then(() => undefined),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A command in RESP, the Redis protocol: an array of bulk strings. */
function encodeCommand(parts: readonly string[]): string {
  let text = `*${parts.length}\r\n`;
  for (const part of parts) text += `$${Buffer.byteLength(part, "utf8")}\r\n${part}\r\n`;
  return text;
}

/** Sends one command on a new connection and resolves to its raw reply. */
async function command(port: number, parts: readonly string[]): Promise<string> {
  const socket = await connect(port);
  try {
    socket.write(encodeCommand(parts));
    const [reply] = (await once(socket, "data")) as [Buffer];
    return reply.toString("utf8");
  } finally {
    socket.destroy();
  }
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.once("error", reject);
    socket.connect(port, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})`);
    try {
      if ((await command(port, ["PING"])).startsWith("+PONG")) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("redis-server did not answer PING within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
