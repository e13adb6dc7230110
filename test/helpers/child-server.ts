import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { SessionStoreClient } from "../../gen/sessionstore/v1/session_store.js";
import { REPOSITORY } from "./repository.js";

const CLI = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

/** The compiled server running as a child process, as `sessionstore serve` runs in production. */
export interface ChildServer {
  /** The process started: the server, or npm for startWithNpm. */
  process: ChildProcess;
  address: string;
  client: SessionStoreClient;
  /** Log lines (parsed JSON) the server printed so far. */
  logs: Record<string, unknown>[];
  /** Resolves to the exit code (or signal name) once `process` has exited. */
  exited: Promise<number | string>;
}

/**
 * Starts `sessionstore serve` with `args` on 127.0.0.1:0 and waits until it listens; with
 * `maxFileDescriptors`, under that limit of open files (ulimit -n).
 */
export async function startChildServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { maxFileDescriptors?: number } = {},
): Promise<ChildServer> {
  const command = [process.execPath, CLI, "serve", "--listen", "127.0.0.1:0", ...args];
  const [file, ...fileArgs] =
    options.maxFileDescriptors === undefined
      ? command
      : ["sh", "-c", `ulimit -n ${options.maxFileDescriptors} && exec "$@"`, "sh", ...command];
  const child = spawn(file as string, fileArgs, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return attach(child);
}

/**
 * `npm start` at the repository's root, as the README's quick start runs it, with `env` added to
 * the environment (the settings). It runs in a process group of its own, as in a terminal, so
 * that a test can signal npm, its shell and the server at once, as Ctrl-C does.
 */
export function startWithNpm(env: NodeJS.ProcessEnv): Promise<ChildServer> {
  const child = spawn("npm", ["start"], {
    cwd: REPOSITORY,
    detached: true,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return attach(child);
}

/** Waits until the server `child` runs logs that it listens, collecting its log lines. */
async function attach(child: ChildProcess): Promise<ChildServer> {
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  const address = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      if (!line.startsWith("{")) return; // npm's own lines, before the server's
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === "sessionstore listening") resolve(entry.address as string);
    });
    void exited.then((code) =>
      reject(new Error(`server exited (${code}) before listening: ${stderr}`)),
    );
  });
  const client = new SessionStoreClient(address, credentials.createInsecure());
  return { process: child, address, client, logs, exited };
}
