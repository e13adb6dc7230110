import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/**
 * The directory of PostgreSQL's server programs (initdb, pg_ctl, postgres), or undefined when
 * PostgreSQL is not installed. scripts/setup-servers.sh installs it from Debian's packages.
 */
export function postgresBinaries(): string | undefined {
  try {
    const bindir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
    if (existsSync(join(bindir, "initdb"))) return bindir;
  } catch {
    // pg_config is in libpq-dev; fall back to Debian's layout.
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  for (const version of readdirSync(root).sort().reverse()) {
    const bindir = join(root, version, "bin");
    if (existsSync(join(bindir, "initdb")) && existsSync(join(bindir, "pg_ctl"))) return bindir;
  }
  return undefined;
}

/** A throwaway PostgreSQL cluster in a temp directory, listening on 127.0.0.1 only. */
export interface PostgresCluster {
  /** URL of its `postgres` database, as the superuser `sessionstore`. */
  url: string;
  port: number;
  /** Stops the server (fast shutdown); `start` brings it back with the same data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** A new, empty database; resolves to its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

/**
 * Creates and starts a cluster. initdb refuses to run as root, so as root the cluster belongs to
 * the unprivileged `postgres` user that Debian's package creates.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bindir = postgresBinaries();
  if (!bindir) throw new Error("PostgreSQL is not installed: run scripts/setup-servers.sh");
  const root = await mkdtemp(join(tmpdir(), "sessionstore-pg-"));
  const dataDir = join(root, "data");
  const socketDir = join(root, "socket");
  const asRoot = process.getuid?.() === 0;
  const runAs = async (program: string, args: string[]) => {
    const command = asRoot ? "runuser" : join(bindir, program);
    const commandArgs = asRoot ? ["-u", "postgres", "--", join(bindir, program), ...args] : args;
    return run(command, commandArgs, { cwd: root });
  };
  await mkdir(socketDir);
  await chmod(root, 0o755);
  if (asRoot) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout);
    const gid = Number((await run("id", ["-g", "postgres"])).stdout);
    for (const path of [root, socketDir]) await chown(path, uid, gid);
  }
  await runAs("initdb", [
    "-D",
    dataDir,
    "-U",
    "sessionstore",
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
  ]);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    "-h 127.0.0.1",
    `-k ${socketDir}`,
    "-c max_connections=200",
    "-c shared_buffers=128MB",
    "-c fsync=on",
  ].join(" ");
  const start = async () => {
    await runAs("pg_ctl", [
      "-D",
      dataDir,
      "-o",
      options,
      "-l",
      join(root, "server.log"),
      "-w",
      "start",
    ]);
  };
  const stop = async () => {
    await runAs("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]);
  };
  await start();
  const url = `postgresql://sessionstore@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    start,
    stop,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, "")}"`);
      } finally {
        await client.end();
      }
      return `postgresql://sessionstore@127.0.0.1:${port}/${name}`;
    },
    async destroy() {
      await stop().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A free TCP port on 127.0.0.1 (free when asked: bind it soon). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
