import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import config from "../../../vitest.config.js";

/** The repository's configuration (its reporters) over suites.fixture.ts alone, without the build. */
export default defineConfig({
  ...config,
  // Vite's cache stays in the repository's node_modules, not in a node_modules of its own here.
  cacheDir: fileURLToPath(new URL("../../../node_modules/.vite", import.meta.url)),
  test: {
    ...config.test,
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["suites.fixture.ts"],
    globalSetup: [],
  },
});
