import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, Socket } from "node:net";
import { type AppendLoad, type AppendResult, measureStreams } from "./append-load.js";
import { takeMessages } from "./payloads.js";
import { nowMs } from "./stats.js";
import { findExecutable } from "./tools.js";

/** A redis-server the bench started: loopback only, no persistence. */
export interface RedisProcess {
  port: number;
  pid: number;
  version: string;
  /** Deletes every key (between runs, so memory does not pile up). */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts redis-server when it is installed; undefined when it is not. */
export async function startRedis(): Promise<RedisProcess | undefined> {
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
      "--appendonly",
      "no",
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

/**
 * The Redis baseline of an append workload: per stream, one connection appending to one stream
 * key with XADD, each "request" of `messagesPerRequest` commands written at once (pipelined),
 * `window` of them unanswered at most.
 */
export function driveXadd(port: number, load: AppendLoad): Promise<AppendResult> {
  return measureStreams(load, (key, stream, latencies) =>
    driveConnection(port, key, stream, load, latencies),
  );
}

async function driveConnection(
  port: number,
  key: string,
  stream: number,
  load: AppendLoad,
  latencies: number[],
): Promise<void> {
  const batches: Buffer[] = [];
  for (let variant = 0; variant < 16; variant++) {
    const offset = (stream * 16 + variant) * load.messagesPerRequest;
    const commands = takeMessages(load.payloads, offset, load.messagesPerRequest).map((message) =>
      encodeCommand(["XADD", key, "*", "m", message]),
    );
    batches.push(Buffer.from(commands.join(""), "utf8"));
  }
  const socket = await connect(port);
  socket.setNoDelay(true);
  const replies = new ReplyCounter();
  const sentAt: number[] = [];
  let sent = 0;
  let acknowledged = 0;
  let answered = 0;
  await new Promise<void>((resolve, reject) => {
    const sendMore = () => {
      while (sent < load.requestsPerStream && sent - acknowledged < load.window) {
        sentAt.push(nowMs());
        socket.write(batches[sent % batches.length] as Buffer);
        sent++;
      }
    };
    socket.on("data", (chunk: Buffer) => {
      try {
        answered += replies.feed(chunk);
      } catch (error) {
        reject(error);
        return;
      }
      while (answered >= (acknowledged + 1) * load.messagesPerRequest) {
        latencies.push(nowMs() - (sentAt[acknowledged] as number));
        acknowledged++;
      }
      if (acknowledged === load.requestsPerStream) resolve();
      else sendMore();
    });
    socket.on("error", reject);
    sendMore();
  });
  socket.destroy();
}

/** A command in RESP, the Redis protocol: an array of bulk strings. */
function encodeCommand(parts: readonly string[]): string {
  let text = `*${parts.length}\r\n`;
  for (const part of parts) text += `$${Buffer.byteLength(part, "utf8")}\r\n${part}\r\n`;
  return text;
}

/** Counts complete RESP replies in a byte stream; throws on an error reply. */
class ReplyCounter {
  private pending: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns how many replies they completed. */
  feed(chunk: Buffer): number {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let position = 0;
    let count = 0;
    for (;;) {
      const lineEnd = data.indexOf("\r\n", position);
      if (lineEnd === -1) break;
      const type = data[position];
      if (type === 0x2d /* - */) {
        throw new Error(`redis: ${data.toString("utf8", position + 1, lineEnd)}`);
      }
      let end = lineEnd + 2;
      if (type === 0x24 /* $ */) {
        const length = Number(data.toString("latin1", position + 1, lineEnd));
        if (length >= 0) end += length + 2;
      }
      if (end > data.length) break;
      position = end;
      count++;
    }
    this.pending = Buffer.from(data.subarray(position));
    return count;
  }
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

/** A TCP port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}
