import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { postgresBinaries } from "../test/helpers/postgres-cluster.js";
import { type BenchContext, cpuProfileDir } from "./context.js";
import { startEcho } from "./echo.js";
import type { LoadPeer } from "./loadgen.js";
import { type NatsSync, startNats } from "./nats.js";
import { type AppendFsync, startRedis } from "./redis.js";
import { freshDatabase } from "./scenarios/postgres.js";
import { freshDir, startSessionStore } from "./sessionstore.js";

/** A peer running for one figure's runs; `stop` ends it and resolves to its log lines, if any. */
export interface RunningPeer {
  peer: LoadPeer;
  stop(): Promise<Record<string, unknown>[]>;
}

/**
 * Something measured next to sessionstore: a label for the table, what it persisted before it
 * acknowledged (the row says it), and how to start it; `start` resolves to why it cannot run
 * here (a missing tool) instead of a peer.
 */
export interface Contender {
  label: string;
  persisted: string;
  /** The load's `sync` flag: sessionstore's durable requests, PostgreSQL's synchronous_commit. */
  sync: boolean;
  /** Whether its failure fails the bench (sessionstore's) instead of skipping its rows. */
  required?: boolean;
  start(context: BenchContext): Promise<RunningPeer | string>;
}

let started = 0;
const scratch = (context: BenchContext, name: string) =>
  freshDir(context.workDir, `${name}-${started++}`);

/** The compiled server, default settings, a fresh data directory; `fsyncTrace`: under strace. */
export function sessionstore(
  scenario: number,
  sync: boolean,
  options: { fsyncTrace?: string } = {},
): Contender {
  return {
    label: sync ? "sessionstore sync" : "sessionstore buffered",
    persisted: sync
      ? "the journal (one file for every session), fdatasynced before the ack, one fsync per group of acks; the session files within --flush-interval-ms"
      : "memory at the ack; written and fsynced within --flush-interval-ms (5 s)",
    sync,
    required: true,
    async start(context) {
      const profileDir = cpuProfileDir(context, scenario);
      const server = await startSessionStore({
        dataDir: scratch(context, `scenario-${scenario}`),
        ...options,
        ...(profileDir ? { cpuProfileDir: profileDir } : {}),
      });
      return {
        peer: { kind: "grpc", address: server.address, pid: server.pid },
        async stop() {
          await server.close();
          return server.logs;
        },
      };
    },
  };
}

/** The bare grpc-js echo (bench/echo-server.ts), with the server's HTTP/2 settings. */
export const echo: Contender = {
  label: "grpc-js echo, the server's HTTP/2 settings",
  persisted: "nothing (answers each request at once)",
  sync: false,
  async start() {
    const server = await startEcho();
    return {
      peer: { kind: "grpc", address: server.address, pid: server.pid },
      async stop() {
        await server.stop();
        return [];
      },
    };
  },
};

/** redis-server with its append-only file fsynced as `appendfsync` says, XADD per message. */
export function redis(appendfsync: AppendFsync): Contender {
  return {
    label: `Redis XADD, AOF appendfsync ${appendfsync}`,
    persisted:
      appendfsync === "always"
        ? "AOF, fsync before each reply (appendfsync always)"
        : "AOF written before each reply, fsync once a second (appendfsync everysec)",
    sync: false,
    async start(context) {
      const server = await startRedis(scratch(context, "redis"), appendfsync);
      if (!server) return "redis-server is not installed (scripts/setup-bench.sh installs it)";
      context.peerVersions.add(server.version);
      return {
        peer: {
          kind: "redis",
          address: `127.0.0.1:${server.port}`,
          pid: server.pid,
          betweenRuns: () => server.flushAll(),
        },
        async stop() {
          await server.stop();
          return [];
        },
      };
    },
  };
}

/** nats-server, JetStream on file storage, fsynced as `sync` says. */
export function nats(sync: NatsSync): Contender {
  return {
    label: `NATS JetStream, file storage, ${sync === "always" ? "sync_interval always" : "default sync"}`,
    persisted:
      sync === "always"
        ? "file store, fsync before each ack (sync_interval: always)"
        : "file store written before each ack, fsync every 2 minutes (the default sync_interval)",
    sync: false,
    async start(context) {
      const server = await startNats(scratch(context, "nats"), sync);
      if (!server) return "nats-server is not built (scripts/setup-bench.sh builds it with Go)";
      context.peerVersions.add(server.version);
      return {
        peer: { kind: "nats", address: server.url, pid: server.pid },
        async stop() {
          await server.stop();
          return [];
        },
      };
    },
  };
}

/**
 * PostgreSQL (a throwaway cluster, fsync on), a request's messages as rows of one INSERT, with
 * synchronous_commit on or off. Its CPU is spread over one backend per connection: not shown.
 */
export function postgres(synchronousCommit: boolean): Contender {
  return {
    label: `PostgreSQL INSERT, synchronous_commit ${synchronousCommit ? "on" : "off"}`,
    persisted: synchronousCommit
      ? "WAL fsynced before each commit returns (synchronous_commit on)"
      : "WAL written, fsynced within 3 × wal_writer_delay (synchronous_commit off)",
    sync: synchronousCommit,
    async start(context) {
      const bindir = postgresBinaries();
      if (!bindir) return "PostgreSQL is not installed (scripts/setup-servers.sh installs it)";
      context.peerVersions.add(
        execFileSync(join(bindir, "postgres"), ["--version"], { encoding: "utf8" }).trim(),
      );
      return {
        peer: { kind: "postgres", address: await freshDatabase(context) },
        stop: async () => [],
      };
    },
  };
}
