import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SuiteOptions } from "vitest";
import { REPOSITORY } from "./repository.js";
import { type ProgramRun, run } from "./run-program.js";
import { skipWithReason } from "./skipped-suites.js";

/**
 * Helm, which scripts/setup-helm.sh builds into .tools/bin at a pinned version. Without it the
 * chart's tests are skipped with a notice, unless SESSIONSTORE_REQUIRE_HELM=1 (CI), which makes
 * a missing Helm a failure.
 */
export const HELM = join(REPOSITORY, ".tools/bin/helm");
export const CHART = join(REPOSITORY, "deploy/helm/sessionstore");

/** Suite options: skipped, saying why, when Helm is missing and not required. */
export function skipWithoutHelm(): SuiteOptions {
  return skipWithReason(
    existsSync(HELM) || process.env.SESSIONSTORE_REQUIRE_HELM === "1"
      ? undefined
      : "Helm not found (.tools/bin/helm): run scripts/setup-helm.sh " +
          "(SESSIONSTORE_REQUIRE_HELM=1, as in CI, makes this a failure)",
  );
}

/** Runs Helm with `args`, and `values` (YAML) as the values file `-`; never rejects for a non-zero exit. */
export async function helm(args: string[], values = ""): Promise<ProgramRun> {
  if (!existsSync(HELM)) {
    throw new Error(`${HELM} not found (SESSIONSTORE_REQUIRE_HELM=1): run scripts/setup-helm.sh`);
  }
  return run(HELM, [...args, "--values", "-"], { input: Buffer.from(values) });
}
