import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SuiteOptions } from "vitest";
import { REPOSITORY } from "./repository.js";
import { skipWithReason } from "./skipped-suites.js";

/**
 * The Python, Go, grpcurl and Rust toolchains of the clients and the interop tests.
 * scripts/setup-polyglot.sh installs what they need into .tools/; without it (or without python3,
 * go or cargo) the tests that need them are skipped with a notice, unless
 * SESSIONSTORE_REQUIRE_POLYGLOT=1 (CI), which makes a missing toolchain a failure.
 */

/**
 * The Python of .tools/venv, where the Python client is installed editable with its framework
 * extras; SESSIONSTORE_PYTHON names another (a venv of your own with the same packages).
 */
export const PYTHON = process.env.SESSIONSTORE_PYTHON || join(REPOSITORY, ".tools/venv/bin/python");
/** The Python of .tools/venv-openai-agents: the client with the OpenAI Agents SDK (pinned). */
export const PYTHON_OPENAI_AGENTS = join(REPOSITORY, ".tools/venv-openai-agents/bin/python");
/** The Python of .tools/venv-adk: the client with Google's Agent Development Kit (pinned). */
export const PYTHON_ADK = join(REPOSITORY, ".tools/venv-adk/bin/python");
export const GRPCURL = join(REPOSITORY, ".tools/bin/grpcurl");
const REQUIRED = process.env.SESSIONSTORE_REQUIRE_POLYGLOT === "1";

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/** Whether PYTHON can import `module` (a framework extra installed by setup-polyglot.sh). */
function pythonImports(module: string): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ["-c", `import ${module}`]).status === 0;
}

const TOOLCHAINS = {
  python: { what: "the Python client's venv (.tools/venv)", present: () => existsSync(PYTHON) },
  langchain: {
    what: "langchain-core in the Python client's venv (Python 3.11 or later)",
    present: () => pythonImports("langchain_core"),
  },
  openaiAgents: {
    what: "the OpenAI Agents SDK's venv (.tools/venv-openai-agents)",
    present: () => existsSync(PYTHON_OPENAI_AGENTS),
  },
  adk: {
    what: "Google ADK's venv (.tools/venv-adk, Python 3.11 or later)",
    present: () => existsSync(PYTHON_ADK),
  },
  go: { what: "go", present: () => onPath("go") },
  grpcurl: { what: "grpcurl (.tools/bin)", present: () => existsSync(GRPCURL) },
  cargo: { what: "cargo", present: () => onPath("cargo") },
};

/** A toolchain some tests need. */
export type Toolchain = keyof typeof TOOLCHAINS;

/** What is missing of `toolchains`, described for a notice. */
export function missingToolchains(...toolchains: Toolchain[]): string[] {
  return toolchains
    .filter((name) => !TOOLCHAINS[name].present())
    .map((name) => TOOLCHAINS[name].what);
}

/**
 * Suite options that skip it for want of `missing`, saying why at the end of the run, unless
 * the toolchains are required (then the tests run and fail, saying what to do).
 */
export function skipWithout(missing: string[]): SuiteOptions {
  return skipWithReason(
    missing.length === 0 || REQUIRED
      ? undefined
      : `${missing.join(", ")} not found; run scripts/setup-polyglot.sh ` +
          "(SESSIONSTORE_REQUIRE_POLYGLOT=1, as in CI, makes this a failure)",
  );
}

/** Fails, when tests run that need `missing` (SESSIONSTORE_REQUIRE_POLYGLOT=1), saying what to do. */
export function requireTools(missing: string[]): void {
  if (missing.length > 0) {
    throw new Error(
      `SESSIONSTORE_REQUIRE_POLYGLOT=1 but ${missing.join(", ")} not found: run scripts/setup-polyglot.sh`,
    );
  }
}
