import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const VITEST = join(
  dirname(createRequire(import.meta.url).resolve("vitest/package.json")),
  "vitest.mjs",
);
const CONFIG = fileURLToPath(new URL("skip-summary/vitest.config.ts", import.meta.url));

it("a run that skipped suites ends by naming each one (not those inside it) and why", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [VITEST, "run", "--config", CONFIG],
    {
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  expect(stdout).toMatch(/Tests +1 passed \| 2 skipped/);
  expect(stdout.trimEnd().split("\n").slice(-3)).toEqual([
    "Skipped: 1 suite did not run",
    "  suites.fixture.ts > a suite whose tool is missing",
    "    frobnicate not found; install it",
  ]);
});
