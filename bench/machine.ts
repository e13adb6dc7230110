import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, type as osType, release, totalmem } from "node:os";

/** Where and with what a bench ran: the header of its table. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  grpcJs: string;
  /** Versions of the peers measured (Redis, nats-server, the load client's Go), when any ran. */
  peers?: string[];
  /** Load averages (1, 5, 15 minutes) when the bench started: other work skews the figures. */
  loadAverage: number[];
}

export function describeMachine(loadAverage: number[], peers: readonly string[]): Machine {
  const require = createRequire(import.meta.url);
  const grpcJs = (require("@grpc/grpc-js/package.json") as { version: string }).version;
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${osRelease() ?? osType()} (${osType()} ${release()})`,
    node: process.version,
    grpcJs,
    loadAverage: loadAverage.map((load) => Math.round(load * 100) / 100),
    ...(peers.length > 0 ? { peers: [...peers] } : {}),
  };
}

function osRelease(): string | undefined {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
  } catch {
    return undefined;
  }
}
