import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import {
  type PostgresCluster,
  postgresBinaries,
  startPostgresCluster,
} from "./helpers/postgres-cluster.js";

declare module "vitest" {
  interface ProvidedContext {
    /** The shared throwaway PostgreSQL cluster's admin URL, or why there is none. */
    postgres: { url: string } | { missing: string };
    /** A directory of this test run, shared by all its test files (removed at the end). */
    runDirectory: string;
  }
}

/**
 * Before any test: build the compiled CLI (child-process tests run it), make a directory for
 * work test files share across workers (test/helpers/packed-client.ts), and start a throwaway
 * PostgreSQL cluster for the suites that run on PostgreSQL, when it is installed. Without it,
 * those suites are skipped with the reason, unless SESSIONSTORE_REQUIRE_SERVERS=1 (CI).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  const runDirectory = mkdtempSync(join(tmpdir(), "sessionstore-test-run-"));
  project.provide("runDirectory", runDirectory);
  let cluster: PostgresCluster | undefined;
  if (postgresBinaries()) {
    cluster = await startPostgresCluster();
    project.provide("postgres", { url: cluster.url });
  } else if (process.env.SESSIONSTORE_REQUIRE_SERVERS === "1") {
    throw new Error(
      "SESSIONSTORE_REQUIRE_SERVERS=1 but PostgreSQL is not installed: run scripts/setup-servers.sh",
    );
  } else {
    project.provide("postgres", {
      missing: "PostgreSQL is not installed (scripts/setup-servers.sh installs it)",
    });
  }
  return async () => {
    await cluster?.destroy();
    rmSync(runDirectory, { recursive: true, force: true });
  };
}
