import type { SuiteOptions } from "vitest";
import type { Reporter, TestModule, TestSuite, Vitest } from "vitest/node";

declare module "vitest" {
  interface TaskMeta {
    /** Why the suite did not run: set by skipWithReason, printed by SkippedSuitesReporter. */
    skipReason?: string;
  }
}

/**
 * Options for `describe(name, options, fn)`: with a `reason` (a tool or a service missing), the
 * suite is skipped and the reason recorded, for SkippedSuitesReporter to print at the end of the
 * run; with none, the suite runs. The one way a suite skips itself, so that no skip goes unsaid.
 */
export function skipWithReason(reason: string | undefined): SuiteOptions {
  return reason === undefined ? {} : { skip: true, meta: { skipReason: reason } };
}

/**
 * Prints, after vitest's own summary, each suite skipped through skipWithReason and why: a line
 * on stderr among hundreds during the run is easy to miss, a run that did not test everything
 * should say so where the reader looks last.
 */
export class SkippedSuitesReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const skipped = testModules.flatMap((module) =>
      [...module.children.allSuites()].filter(skippedHere).map((suite) => ({ module, suite })),
    );
    if (skipped.length === 0) return;
    const lines = skipped.map(
      ({ module, suite }) =>
        `  ${module.relativeModuleId} > ${suite.fullName}\n    ${suite.meta().skipReason}`,
    );
    const heading = `Skipped: ${skipped.length} suite${skipped.length === 1 ? "" : "s"} did not run`;
    this.vitest?.logger.log(`\n${heading}\n${lines.join("\n")}\n`);
  }
}

/** Whether the suite was skipped with a reason of its own (nested suites inherit the parent's). */
function skippedHere(suite: TestSuite): boolean {
  const reason = suite.meta().skipReason;
  if (reason === undefined) return false;
  return suite.parent.type !== "suite" || suite.parent.meta().skipReason !== reason;
}
