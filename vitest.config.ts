import { defineConfig } from "vitest/config";
import { SkippedSuitesReporter } from "./test/helpers/skipped-suites.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "clients/ts/test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Vitest's own report, then which suites were skipped and why, last, where it is read.
    reporters: ["default", new SkippedSuitesReporter()],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child-process and crash tests are CPU-bound; two workers match the machines we run on.
    maxWorkers: 2,
  },
});
