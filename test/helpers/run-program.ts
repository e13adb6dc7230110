import { spawn } from "node:child_process";
import { REPOSITORY } from "./repository.js";

/** How a program ended, and what it wrote. */
export interface ProgramRun {
  stdout: Buffer;
  stderr: string;
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Where and how to run a program: by default at the repository's root, with empty stdin. */
export interface RunOptions {
  cwd?: string;
  input?: Buffer;
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Kills the program (SIGTERM) if it runs longer. */
  timeoutMs?: number;
}

/** Runs a program to its end; never rejects for a non-zero exit. Python's I/O is UTF-8. */
export function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPOSITORY,
      env: { ...process.env, PYTHONUTF8: "1", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ stdout: Buffer.concat(stdout), stderr, code, signal }),
    );
    child.stdin.end(options.input);
  });
}

/** Runs a program that must succeed; resolves to its stdout, or rejects with its stderr. */
export async function runOk(command: string, args: string[], options: RunOptions = {}) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    const end = result.code === null ? `was killed by ${result.signal}` : `exited ${result.code}`;
    throw new Error(`${command} ${args.join(" ")} ${end}:\n${result.stderr}`);
  }
  return result.stdout;
}
