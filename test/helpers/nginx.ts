import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeBlocks } from "./markdown-code-blocks.js";
import { freePort } from "./postgres-cluster.js";
import { REPOSITORY } from "./repository.js";

/** nginx from Debian's packages (scripts/setup-servers.sh installs it), or undefined. */
export function nginxBinary(): string | undefined {
  for (const candidate of ["/usr/sbin/nginx", "/usr/bin/nginx"]) {
    if (existsSync(candidate)) return candidate;
  }
  const found = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" }).stdout.trim();
  return found || undefined;
}

/** How nginx spreads calls over the replicas: the two configurations the README documents. */
export type Balancing = "round-robin" | "session-affinity";

const README = join(REPOSITORY, "README.md");

/**
 * The README's nginx configuration for `balancing` (its "Running many replicas" section), as
 * written, with the replicas' addresses and the port to listen on filled in, inside the `http`
 * block of a config whose paths are all under `prefix`. The tests run exactly what users copy.
 */
export async function nginxConfig(options: {
  prefix: string;
  listen: string;
  replicas: readonly string[];
  balancing: Balancing;
}): Promise<string> {
  const { prefix, listen, replicas, balancing } = options;
  const marker = balancing === "round-robin" ? "(round-robin)" : "to the same replica";
  const block = codeBlocks(await readFile(README, "utf8"), README).find(
    (candidate) =>
      candidate.language === "nginx" && candidate.code.split("\n")[0]?.includes(marker),
  );
  if (!block) throw new Error(`README.md has no nginx block for ${balancing}`);
  const servers = replicas.map((replica) => `    server ${replica} max_fails=1 fail_timeout=1s;`);
  const lines = block.code.split("\n");
  const firstServer = lines.findIndex((line) => /^\s*server replica-\d+:50051/.test(line));
  const http = [
    ...lines.slice(0, firstServer),
    ...servers,
    ...lines.slice(firstServer).filter((line) => !/^\s*server replica-\d+:50051/.test(line)),
  ]
    .join("\n")
    .replace(/listen 50051 http2;/, `listen ${listen} http2;`);
  return `worker_processes 1;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, "body")};
  proxy_temp_path ${join(prefix, "proxy")};
  fastcgi_temp_path ${join(prefix, "fastcgi")};
  uwsgi_temp_path ${join(prefix, "uwsgi")};
  scgi_temp_path ${join(prefix, "scgi")};
${http}
}
`;
}

/** nginx running with a config and prefix of its own in a temp directory. */
export interface Nginx {
  /** host:port clients connect to. */
  address: string;
  /** Points the balancer at other replicas (or the same ones restarted), without a restart. */
  reload(replicas: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startNginx(
  replicas: readonly string[],
  balancing: Balancing = "round-robin",
): Promise<Nginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error("nginx is not installed: run scripts/setup-servers.sh");
  const prefix = await mkdtemp(join(tmpdir(), "sessionstore-nginx-"));
  await mkdir(join(prefix, "logs"));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const configPath = join(prefix, "nginx.conf");
  const write = async (upstreams: readonly string[]) =>
    writeFile(
      configPath,
      await nginxConfig({ prefix, listen: address, replicas: upstreams, balancing }),
    );
  await write(replicas);
  const child: ChildProcess = spawn(
    binary,
    ["-e", join(prefix, "error.log"), "-p", prefix, "-c", configPath, "-g", "daemon off;"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await waitForPort(port, exited, () => stderr);
  return {
    address,
    async reload(upstreams) {
      await write(upstreams);
      const result = spawnSync(binary, [
        "-e",
        join(prefix, "error.log"),
        "-p",
        prefix,
        "-c",
        configPath,
        "-s",
        "reload",
      ]);
      if (result.status !== 0) throw new Error(`nginx reload failed: ${result.stderr}`);
      // The old worker finishes its calls; new ones go to the new upstreams.
      await new Promise((resolve) => setTimeout(resolve, 300));
    },
    async stop() {
      child.kill("SIGQUIT");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
      child.kill("SIGKILL");
      const log = await readFile(join(prefix, "error.log"), "utf8").catch(() => "");
      await rm(prefix, { recursive: true, force: true });
      if (/\[(emerg|crit)\]/.test(log)) throw new Error(`nginx logged: ${log}`);
    },
  };
}

async function waitForPort(
  port: number,
  exited: Promise<void>,
  stderr: () => string,
): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    if (gone) throw new Error(`nginx exited: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not listen on ${port}: ${stderr()}`);
}
