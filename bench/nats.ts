import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchProgram } from "./loadgen.js";
import { freePort } from "./tools.js";

/**
 * How JetStream fsyncs its file store: `default` leaves nats-server's own setting (a sync every
 * 2 minutes; writes reach the OS at once), `always` fsyncs before each ack.
 */
export type NatsSync = "default" | "always";

/** A nats-server with JetStream the bench started, loopback only. */
export interface NatsProcess {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Starts the nats-server that scripts/setup-bench.sh builds into bench/bin (undefined when it is
 * not there), with JetStream's file store in `dir`.
 */
export async function startNats(dir: string, sync: NatsSync): Promise<NatsProcess | undefined> {
  const executable = benchProgram("nats-server");
  if (!executable) return undefined;
  const version = execFileSync(executable, ["--version"], { encoding: "utf8" }).trim();
  const port = await freePort();
  const storeDir = join(dir, "jetstream");
  mkdirSync(storeDir, { recursive: true });
  const config = join(dir, "nats.conf");
  writeFileSync(
    config,
    [
      `listen: "127.0.0.1:${port}"`,
      "jetstream {",
      `  store_dir: ${JSON.stringify(storeDir)}`,
      ...(sync === "always" ? ["  sync_interval: always"] : []),
      "}",
      "",
    ].join("\n"),
  );
  const child = spawn(executable, ["-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  const exited = once(child, "exit");
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timeout = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nats-server was not ready within ${READY_TIMEOUT_MS} ms:\n${log}`));
    }, READY_TIMEOUT_MS);
    child.stderr.on("data", (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
      if (log.includes("Server is ready")) {
        clearTimeout(timeout);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timeout);
      reject(new Error(`nats-server exited before it was ready:\n${log}`));
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid as number,
    version,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}
