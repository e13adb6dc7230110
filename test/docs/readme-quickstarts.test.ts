import { readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CodeBlock, codeBlocks, commands } from "../helpers/markdown-code-blocks.js";
import {
  compileTypeScript,
  installPackedClient,
  installRepositoryVersions,
  packedClient,
  withBuiltClient,
} from "../helpers/packed-client.js";
import {
  missingToolchains,
  PYTHON,
  PYTHON_ADK,
  PYTHON_OPENAI_AGENTS,
  requireTools,
  type Toolchain,
} from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { makeTempDir, startTestServer } from "../helpers/test-server.js";

/**
 * Every code block of the READMEs runs here as written, against a server of its own, or says
 * where it is exercised instead. The comment on the line before a block says which:
 * - `<!-- ci: run -->`: run by its language, with SESSIONSTORE_ADDRESS naming the server. sh:
 *   by bash at the repository's root. python: as a script, by .tools/venv's Python (where the
 *   client is installed with its framework extras), or in an adapter's README by the Python of
 *   its framework's venv. ts: as a module of a new project where the packed client is installed,
 *   type-checked and compiled by tsc. go: saved as main.go in a new directory and run there by
 *   the block of clients/go/README.md marked `<!-- ci: runs each go block -->`, as written.
 * - `<!-- ci: example -->`: the command of an example (examples/NAME/README.md), run by
 *   test/examples/examples.test.ts, which checks what it prints and what the server then holds.
 * - `<!-- ci: output -->`: exactly what the last block marked run (or example) before it prints.
 * - `<!-- ci: not run: why, and where it is exercised -->`.
 */

const READMES = [
  "README.md",
  "clients/ts/README.md",
  "clients/ts/README-openai-agents.md",
  "clients/ts/README-langchain.md",
  "examples/langchain-js/README.md",
  "clients/python/README.md",
  "clients/python/docs/langchain.md",
  "clients/python/README-openai-agents.md",
  "clients/python/README-adk.md",
  "examples/adk/README.md",
  "clients/go/README.md",
  "clients/rust/README.md",
  "deploy/helm/sessionstore/README.md",
  "examples/openai-agents-python/README.md",
  "examples/openai-agents-js/README.md",
  "examples/langchain-python/README.md",
];
const RUNS_EACH_GO_BLOCK = "runs each go block";
const MARKER = /^(run|output|example|runs each go block|not run: .+)$/;

const blocks = READMES.flatMap((file) =>
  codeBlocks(readFileSync(join(REPOSITORY, file), "utf8"), file),
);
const goRunner = blocks.find((block) => block.ci === RUNS_EACH_GO_BLOCK);

/** Each block marked run or example, and the output block that says what it prints, if any. */
const runnable = commands(blocks, (block) => block.ci === "run" || block.ci === "example");
/** The blocks run here; test/examples/examples.test.ts runs those marked example. */
const runs = runnable.filter(({ block }) => block.ci === "run");

const where = (block: CodeBlock) => `${block.file}:${block.line}`;

/** The venv whose Python runs an adapter README's python blocks: the one with its framework. */
const ADAPTER_PYTHONS: Record<string, { python: string; toolchain: Toolchain }> = {
  "clients/python/README-openai-agents.md": {
    python: PYTHON_OPENAI_AGENTS,
    toolchain: "openaiAgents",
  },
  "clients/python/README-adk.md": { python: PYTHON_ADK, toolchain: "adk" },
};

/** The toolchains a block needs: its language's, and in a client's README, that client's. */
function toolchainsOf(block: CodeBlock): Toolchain[] {
  const needs = new Set<Toolchain>();
  const adapter = ADAPTER_PYTHONS[block.file];
  if (adapter) needs.add(adapter.toolchain);
  else if (block.language === "python" || block.file === "clients/python/README.md") {
    needs.add("python");
  }
  if (block.language === "go" || block.file === "clients/go/README.md") needs.add("go");
  if (block.file === "clients/python/docs/langchain.md") needs.add("langchain");
  return [...needs];
}

/** Whether a block runs npm, which may build clients/ts (see withBuiltClient). */
const npmCommand = (block: CodeBlock) => block.language === "sh" && /\bnpm\b/.test(block.code);

const tempDirs: string[] = [];
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir("sessionstore-readme-");
  tempDirs.push(dir);
  return dir;
}

/** The module a ts block is compiled to, in the project of tsProject(). */
const tsModule = (block: CodeBlock) =>
  `quickstart-${block.file.replaceAll("/", "-")}-${block.line}`;

let tsCompiled: Promise<string> | undefined;

/**
 * A new project with the packed client installed, and @langchain/core for the LangChain adapter's
 * README, and every ts block compiled (one tsc run).
 */
function tsProject(): Promise<string> {
  tsCompiled ??= (async () => {
    const project = await tempDir();
    await installPackedClient(project);
    await installRepositoryVersions(project, ["@langchain/core", "@openai/agents-core"]);
    const sources: string[] = [];
    for (const { block } of runs.filter(({ block }) => block.language === "ts")) {
      sources.push(`${tsModule(block)}.mts`);
      await writeFile(join(project, `${tsModule(block)}.mts`), block.code);
    }
    await compileTypeScript(project, sources, { outDir: "out" });
    return project;
  })();
  return tsCompiled;
}

/** Runs `block` as its marker says, against the server at `address`; resolves to its stdout. */
async function runBlock(block: CodeBlock, address: string): Promise<string> {
  const env = {
    SESSIONSTORE_ADDRESS: address,
    SESSIONSTORE_CHECKOUT: resolve(REPOSITORY),
    // `python` and `pip` in a command are the venv's, where the client is installed.
    PATH: `${dirname(PYTHON)}:${process.env.PATH}`,
    // Off the network: the module cache holds every module (scripts/setup-polyglot.sh built
    // clients/go), and the new module's go.sum lines would otherwise be checked with
    // sum.golang.org.
    GOPROXY: "off",
    GOSUMDB: "off",
  };
  // A build of the client (an npm command's) takes longer.
  const options = { env, timeoutMs: npmCommand(block) ? 240_000 : 90_000 };
  const bash = (code: string, cwd: string) =>
    runOk("bash", ["-e", "-o", "pipefail", "-c", code], { ...options, cwd });
  switch (block.language) {
    case "sh": {
      const ran = async () => (await bash(block.code, REPOSITORY)).toString();
      // An npm command may build the workspace's packages (`npm run example` builds clients/ts):
      // not while another test file builds or uses them. The others wait for this run's pack of
      // the client, which builds it too.
      if (npmCommand(block)) return withBuiltClient(ran);
      await packedClient();
      return ran();
    }
    case "python": {
      const script = join(await tempDir(), "quickstart.py");
      await writeFile(script, block.code);
      const python = ADAPTER_PYTHONS[block.file]?.python ?? PYTHON;
      return (await runOk(python, [script], options)).toString();
    }
    case "ts": {
      const cwd = await tsProject();
      const compiled = join("out", `${tsModule(block)}.mjs`);
      return (await runOk(process.execPath, [compiled], { ...options, cwd })).toString();
    }
    case "go": {
      if (!goRunner) throw new Error(`no block is marked "${RUNS_EACH_GO_BLOCK}"`);
      const dir = await tempDir();
      await writeFile(join(dir, "main.go"), block.code);
      return (await bash(goRunner.code, dir)).toString();
    }
    default:
      throw new Error(`${where(block)}: no way to run a ${block.language || "plain"} block`);
  }
}

describe("the READMEs' code blocks", () => {
  it("each says whether it runs here, and a block marked output follows one that runs", () => {
    const unmarked = blocks.filter((block) => !MARKER.test(block.ci ?? "")).map(where);
    expect(unmarked, "blocks without a valid <!-- ci: ... --> comment").toEqual([]);
    const outputs = blocks.filter((block) => block.ci === "output");
    const shown = runnable.flatMap(({ output }) => (output ? [output] : []));
    expect(outputs.map(where)).toEqual(shown.map(where));
    expect(outputs.filter((block) => block.language !== "text").map(where)).toEqual([]);
    const goRunners = blocks.filter((block) => block.ci === RUNS_EACH_GO_BLOCK);
    expect(goRunners.map((block) => [block.file, block.language])).toEqual([
      ["clients/go/README.md", "sh"],
    ]);
  });

  for (const { block, output } of runs) {
    const missing = missingToolchains(...toolchainsOf(block));
    it.skipIf(missing.length > 0 && process.env.SESSIONSTORE_REQUIRE_POLYGLOT !== "1")(
      `${where(block)} (${block.language}) runs as written${output ? ", printing what it shows" : ""}`,
      async () => {
        requireTools(missing);
        // Flushing only on request, so that the durable counts a block prints do not depend on
        // how long it takes.
        const server = await startTestServer({ flushIntervalMs: 600_000 });
        try {
          const stdout = await runBlock(block, server.server.address);
          if (output) expect(stdout).toBe(output.code);
        } finally {
          await server.close();
        }
      },
      // The first ts block waits for the client's pack, the project's installs and tsc; a block
      // that builds the client may first wait for another test file's build.
      block.language === "ts" || npmCommand(block) ? 300_000 : 120_000,
    );
  }
});
