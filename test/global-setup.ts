import { execFileSync } from "node:child_process";

/** Child-process tests run the compiled CLI: build it once (incrementally) before any test. */
export default function setup(): void {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
