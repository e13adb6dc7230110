import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres-cluster.js";

/** nginx from Debian's packages (scripts/setup-servers.sh installs it), or undefined. */
export function nginxBinary(): string | undefined {
  for (const candidate of ["/usr/sbin/nginx", "/usr/bin/nginx"]) {
    if (existsSync(candidate)) return candidate;
  }
  const found = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" }).stdout.trim();
  return found || undefined;
}

/** How nginx spreads calls over the replicas. */
export type Balancing = "round-robin" | "session-affinity";

/**
 * The gRPC load balancer config the README documents: HTTP/2 in, `grpc_pass` to the replicas,
 * each call (an HTTP/2 stream) sent to the next replica, or, with session affinity, to the one
 * the `x-session-id` metadata key hashes to. Long-lived streams (Watch, Append) are not cut by
 * nginx's timeouts.
 */
export function nginxConfig(options: {
  prefix: string;
  listen: string;
  replicas: readonly string[];
  balancing: Balancing;
}): string {
  const { prefix, listen, replicas, balancing } = options;
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

  upstream sessionstore {
${balancing === "session-affinity" ? "    hash $http_x_session_id consistent;\n" : ""}${replicas
  .map((replica) => `    server ${replica} max_fails=1 fail_timeout=1s;`)
  .join("\n")}
    keepalive 64;
  }

  server {
    listen ${listen} http2;
    location / {
      grpc_pass grpc://sessionstore;
      # A replica that refuses or drops a call: the next one takes it, when nothing was sent yet.
      grpc_next_upstream error timeout;
      grpc_connect_timeout 1s;
      # Watch and Append streams live for hours: no timeout between messages.
      grpc_read_timeout 24h;
      grpc_send_timeout 24h;
      client_body_timeout 24h;
      client_max_body_size 16m;
    }
  }
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
  const write = (upstreams: readonly string[]) =>
    writeFile(configPath, nginxConfig({ prefix, listen: address, replicas: upstreams, balancing }));
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
