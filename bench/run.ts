/**
 * `npm run bench [-- --quick] [-- --only 1,3] [-- --cpu-prof <dir>]`: runs the scenarios of
 * issue 7 against the compiled server in a child process, prints one markdown table (each figure
 * next to a baseline measured in the same run, with the ratio and the target) and writes it as
 * JSON under bench/results/. See the README's "Benchmarks".
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { killAll } from "./child-process.js";
import { type BenchContext, type Scenario, SIZES } from "./context.js";
import { describeMachine } from "./machine.js";
import { makePayloads } from "./payloads.js";
import { type Report, type Row, renderReport, writeReport } from "./report.js";
import { agentSessionScenarios, startFileServer } from "./scenarios/agent-sessions.js";
import {
  agentsAppend,
  batchedAppend,
  durableAppend,
  singleMessageAppend,
} from "./scenarios/ingest.js";
import { appendToLongSession, lastMessages, loadLongSession } from "./scenarios/long-session.js";
import { bufferedSessions, manySessions } from "./scenarios/many-sessions.js";
import {
  POSTGRES_SCENARIOS,
  startOnFreshDatabase,
  stopPostgresBench,
} from "./scenarios/postgres.js";
import { REPLICA_SCENARIOS } from "./scenarios/replicas.js";
import { seedComparison } from "./scenarios/seed.js";
import { findExecutable } from "./tools.js";

/**
 * In the order they run: (4) appends to the long session that (5) and (6) read, so it comes
 * after them. The table shows them by number.
 */
const SCENARIOS: readonly Scenario[] = [
  batchedAppend,
  singleMessageAppend,
  durableAppend,
  loadLongSession,
  lastMessages,
  appendToLongSession,
  manySessions,
  bufferedSessions,
  ...agentSessionScenarios(startFileServer, "jsonl"),
  agentsAppend,
  seedComparison,
];

const RESULTS_DIR = fileURLToPath(new URL("../../bench/results/", import.meta.url));

const USAGE = `Usage: npm run bench -- [options]

  --quick            small sizes and one run (about 2 minutes): checks the harness, not the targets
  --only <list>      only these scenarios, e.g. --only 1,3
  --runs <n>         measured runs per figure (default: 5, quick: 1)
  --cpu-prof <dir>   run every server with --cpu-prof, profiles under <dir>/scenario-<n>/
                     (summarize with: node dist/bench/profile-summary.js <dir>/scenario-<n>)
  --work-dir <dir>   where data directories go (default: the OS temp dir); fsync costs depend on it
  --storage <name>   jsonl (default) or postgres: the server on a throwaway PostgreSQL cluster
                     (needs PostgreSQL installed: scripts/setup-servers.sh), next to bare clients
`;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      runs: { type: "string" },
      "cpu-prof": { type: "string" },
      "work-dir": { type: "string" },
      storage: { type: "string", default: "jsonl" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (values.storage !== "jsonl" && values.storage !== "postgres") {
    throw new Error(`--storage takes jsonl or postgres, got ${values.storage}`);
  }
  const all =
    values.storage === "postgres"
      ? [
          ...POSTGRES_SCENARIOS,
          ...REPLICA_SCENARIOS,
          ...agentSessionScenarios(startOnFreshDatabase, "postgres"),
        ]
      : SCENARIOS;
  const only = values.only?.split(",").map((id) => Number(id.trim()));
  if (only?.some((id) => !all.some((scenario) => scenario.id === id))) {
    throw new Error(
      `--only takes scenario numbers ${all.map((s) => s.id).join(", ")}, got ${values.only}`,
    );
  }
  const runs = values.runs === undefined ? undefined : Number(values.runs);
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) {
    throw new Error(`--runs takes a whole number of at least 1, got ${values.runs}`);
  }
  return {
    mode: values.quick ? ("quick" as const) : ("full" as const),
    storage: values.storage,
    all,
    only,
    runs,
    cpuProfileRoot: values["cpu-prof"] && resolve(values["cpu-prof"]),
    workDirParent: values["work-dir"] ?? tmpdir(),
  };
}

/** The commit measured, "+changes" when src/ differs from it (what the server was built from). */
function sourceRevision(): string {
  const git = (args: string[]) =>
    spawnSync("git", args, {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      encoding: "utf8",
    });
  const head = git(["rev-parse", "--short", "HEAD"]);
  if (head.status !== 0) return "unknown";
  const changed = git(["status", "--porcelain", "--", "src", "gen"]).stdout.trim() !== "";
  return `${head.stdout.trim()}${changed ? "+changes" : ""}`;
}

/** Whether strace runs here (it needs ptrace, which containers may forbid). */
function straceWorks(): boolean {
  if (!findExecutable("strace")) return false;
  const probe = spawnSync("strace", [
    "-f",
    "--seccomp-bpf",
    "-qq",
    "-e",
    "trace=fsync",
    "-o",
    "/dev/null",
    "true",
  ]);
  return probe.status === 0;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const sizes = { ...SIZES[options.mode], ...(options.runs ? { runs: options.runs } : {}) };
  const scenarios = options.all.filter((s) => !options.only || options.only.includes(s.id));
  const workDir = mkdtempSync(resolve(options.workDirParent, "sessionstore-bench-"));
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const started = Date.now();
  const loadAtStart = loadavg();
  const cleanUp = () => {
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      cleanUp();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  try {
    const shared = new Map<string, Promise<unknown>>();
    const context: BenchContext = {
      mode: options.mode,
      sizes,
      workDir,
      payloads: makePayloads(1024),
      peerVersions: new Set(),
      // strace slows the fsyncs it counts: only on request; the server's own counters serve otherwise.
      strace: process.env.SESSIONSTORE_BENCH_STRACE === "1" && straceWorks(),
      cpuProfileRoot: options.cpuProfileRoot,
      log,
      skipped: [],
      once<T>(key: string, make: () => Promise<T>): Promise<T> {
        let value = shared.get(key);
        if (!value) {
          value = make();
          shared.set(key, value);
        }
        return value as Promise<T>;
      },
    };
    const rows: Row[] = [];
    for (const scenario of scenarios) {
      log(`(${scenario.id}) ${scenario.title}`);
      const scenarioStarted = Date.now();
      rows.push(...(await scenario.run(context)));
      log(`  done in ${((Date.now() - scenarioStarted) / 1000).toFixed(1)} s`);
    }
    rows.sort((a, b) => a.scenario - b.scenario);
    const report: Report = {
      date: new Date(started).toISOString(),
      mode: options.mode,
      commit: sourceRevision(),
      machine: describeMachine(loadAtStart, [...context.peerVersions]),
      settings: {
        sizes,
        storage: options.storage,
        scenarios: scenarios.map((s) => s.id),
        workDir: options.workDirParent,
      },
      durationSeconds: (Date.now() - started) / 1000,
      rows,
      skipped: context.skipped,
    };
    process.stdout.write(renderReport(report));
    const partial = Boolean(options.only || options.runs || options.cpuProfileRoot);
    const kind = options.storage === "postgres" ? "postgres" : undefined;
    const complete = options.mode === "full" && !partial;
    const path = writeReport(report, RESULTS_DIR, {
      partial,
      latest: complete,
      ...(kind ? { kind } : {}),
    });
    log(`\nwrote ${path}${complete ? " and latest.json" : ""}`);
    if (options.cpuProfileRoot) {
      log(
        `CPU profiles under ${options.cpuProfileRoot}; summarize with node dist/bench/profile-summary.js <dir>`,
      );
    }
  } finally {
    await stopPostgresBench();
    cleanUp();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  killAll();
  process.exit(1);
});
