import { join } from "node:path";
import { REPOSITORY } from "./repository.js";
import { type ProgramRun, type RunOptions, run } from "./run-program.js";

/** The compiled bin (test/global-setup.ts builds it). */
export const CLI = join(REPOSITORY, "dist/src/cli.js");

/** A run of `sessionstore <args>`, piped (no terminal), its stdout as text. */
export interface Piped extends Omit<ProgramRun, "stdout"> {
  stdout: string;
  /** stdout parsed as one JSON document (for --json). */
  json<T = unknown>(): T;
}

/** Runs `sessionstore <args>` against the server at `address` (SESSIONSTORE_ADDRESS), piped. */
export async function sessionstore(
  address: string,
  args: string[],
  options: RunOptions = {},
): Promise<Piped> {
  const result = await run(process.execPath, [CLI, ...args], {
    timeoutMs: 30_000,
    ...options,
    env: { SESSIONSTORE_ADDRESS: address, ...options.env },
  });
  const stdout = result.stdout.toString("utf8");
  return { ...result, stdout, json: <T>() => JSON.parse(stdout) as T };
}
