import { createHash } from "node:crypto";
import { realpath, rm } from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { join } from "node:path";

/** How long a lock holder has to answer a probe with its pid. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Keeps one server per data directory. The lock is a listening Unix socket named after the
 * directory (in Linux's abstract namespace, so it needs no file): the kernel closes it when the
 * process ends, however it ends, so a crashed server never blocks the next start. A second server
 * finds it answering, learns the holder's pid, and refuses to start.
 */
export class DirectoryLock {
  private constructor(
    private readonly server: Server,
    private readonly address: string,
  ) {}

  static async acquire(directory: string): Promise<DirectoryLock> {
    const address = await lockAddress(directory);
    const holder = await probe(address);
    if (holder !== undefined) throw inUse(directory, holder);
    if (!isAbstract(address)) await rm(address, { force: true }); // left by a crashed server
    const server = createServer((socket) => socket.end(`${process.pid}\n`));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(address, resolve);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") throw inUse(directory, "unknown");
      throw error;
    }
    server.unref();
    return new DirectoryLock(server, address);
  }

  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (!isAbstract(this.address)) await rm(this.address, { force: true });
  }
}

async function lockAddress(directory: string): Promise<string> {
  if (process.platform !== "linux") return join(directory, ".sessionstore.lock");
  const digest = createHash("sha256")
    .update(await realpath(directory))
    .digest("hex");
  return `\0sessionstore-lock-${digest.slice(0, 32)}`;
}

function isAbstract(address: string): boolean {
  return address.startsWith("\0");
}

/** The pid of the server holding the lock ("unknown" if it does not say), or undefined when free. */
function probe(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(address);
    let answer = "";
    const done = (holder: string | undefined) => {
      socket.destroy();
      resolve(holder);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done("unknown"));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString();
    });
    socket.on("end", () => done(answer.trim() || "unknown"));
    socket.on("error", () => done(undefined));
  });
}

function inUse(directory: string, pid: string): Error {
  return new Error(
    `data directory ${directory} is in use by another sessionstore server (pid ${pid}); ` +
      "stop that server or start this one with another --data-dir",
  );
}
