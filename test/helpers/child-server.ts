import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { credentials } from "@grpc/grpc-js";
import { SessionStoreClient } from "../../gen/sessionstore/v1/session_store.js";
import { REPOSITORY } from "./repository.js";

const CLI = join(REPOSITORY, "dist/src/cli.js");

/** The compiled server running as a child process, as `sessionstore serve` runs in production. */
export interface ChildServer {
  process: ChildProcess;
  address: string;
  client: SessionStoreClient;
  /** Log lines (parsed JSON) the server printed so far. */
  logs: Record<string, unknown>[];
  /** Resolves to the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** What a process running the server prints, followed as it comes. */
export interface ServerOutput {
  /** Log lines (parsed JSON) printed so far. */
  logs: Record<string, unknown>[];
  /** The "sessionstore listening" line (address, pid); rejects if the process exits first. */
  listening: Promise<Record<string, unknown>>;
  /** Resolves to the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Resolves with the first log line (so far or to come) whose message is `msg`. */
  logged(msg: string): Promise<Record<string, unknown>>;
}

/**
 * Follows the stdout and stderr of `child`, a process that runs the server, itself or through a
 * wrapper: lines that are not JSON (npm's banner) are skipped.
 */
export function followServerOutput(child: ChildProcess): ServerOutput {
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  const waiting: { msg: string; resolve: (entry: Record<string, unknown>) => void }[] = [];
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === "sessionstore listening") resolve(entry);
      for (const waiter of waiting) if (waiter.msg === entry.msg) waiter.resolve(entry);
    });
    void exited.then((code) =>
      reject(new Error(`server exited (${code}) before listening: ${stderr}`)),
    );
  });
  const logged = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const earlier = logs.find((entry) => entry.msg === msg);
      if (earlier) resolve(earlier);
      else waiting.push({ msg, resolve });
    });
  return { logs, listening, exited, logged };
}

/**
 * Spawns `sessionstore serve` with `args` on 127.0.0.1:0, without waiting for it (a test that
 * kills it while it starts); with `maxFileDescriptors`, under that limit of open files.
 */
export function spawnChildServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { maxFileDescriptors?: number } = {},
): ServerOutput & { process: ChildProcess } {
  const command = [process.execPath, CLI, "serve", "--listen", "127.0.0.1:0", ...args];
  const [file, ...fileArgs] =
    options.maxFileDescriptors === undefined
      ? command
      : ["sh", "-c", `ulimit -n ${options.maxFileDescriptors} && exec "$@"`, "sh", ...command];
  const child = spawn(file as string, fileArgs, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A test that kills it before it listens does not wait for it to listen.
  const output = followServerOutput(child);
  output.listening.catch(() => undefined);
  return { process: child, ...output };
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
  const { process: child, logs, listening, exited } = spawnChildServer(args, env, options);
  const address = (await listening).address as string;
  const client = new SessionStoreClient(address, credentials.createInsecure());
  return { process: child, address, client, logs, exited };
}

/** How a run of the CLI ended, and what it printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI (`sessionstore <args>`) to its end; never rejects for a non-zero exit. */
export function runCli(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      const code = error === null ? 0 : error.code;
      if (typeof code === "number") resolve({ code, stdout, stderr });
      else reject(error); // killed by a signal, or not started at all
    });
  });
}
