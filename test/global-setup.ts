import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** A directory of this test run, shared by all its test files (removed at the end). */
    runDirectory: string;
  }
}

/**
 * Child-process tests run the compiled CLI: build it once (incrementally) before any test. Test
 * files that share work across workers (test/helpers/packed-client.ts) do it in `runDirectory`.
 */
export default function setup(project: TestProject): () => void {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  const runDirectory = mkdtempSync(join(tmpdir(), "sessionstore-test-run-"));
  project.provide("runDirectory", runDirectory);
  return () => rmSync(runDirectory, { recursive: true, force: true });
}
