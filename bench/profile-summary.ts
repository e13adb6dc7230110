/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`, e.g. from `npm run bench -- --cpu-prof <dir>`)
 * by self time: the functions and the modules the CPU was in, busiest first.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile | directory> [--top 25]
 *
 * A directory's profiles are added together.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples?: number[];
  timeDeltas?: number[];
}

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Pseudo-functions V8 reports: no JavaScript was running. */
const IDLE = "(idle)";

/** Where a function lives, short: src/…, node_modules/<package>, node:… */
function place(url: string): string {
  if (url === "") return "";
  const path = url.startsWith("file://") ? relative(REPO, fileURLToPath(url)) : url;
  return path.replace(/^dist\//, "");
}

function area(frame: CallFrame): string {
  const where = place(frame.url);
  if (where === "") return frame.functionName; // (garbage collector), (program), (idle)
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (pkg) return `node_modules/${pkg[1]}`;
  return where.replace(/\.js$/, "");
}

/** Adds each sample's duration (until the next sample) to `byFunction` and `byArea`, in µs. */
function addProfile(
  profile: CpuProfile,
  byFunction: Map<string, number>,
  byArea: Map<string, number>,
): void {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let index = 0; index < samples.length; index++) {
    const frame = frames.get(samples[index] as number);
    if (!frame) continue;
    const micros = deltas[index + 1] ?? 0;
    const where = place(frame.url);
    const name = `${frame.functionName || "(anonymous)"}${where ? ` ${where}:${frame.lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    const key = area(frame);
    byArea.set(key, (byArea.get(key) ?? 0) + micros);
  }
}

function profilesIn(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => join(path, name));
}

function table(title: string, totals: Map<string, number>, busy: number, top: number): string {
  const rows = [...totals].filter(([name]) => name !== IDLE).sort((a, b) => b[1] - a[1]);
  const lines = [`| ${title} | self ms | % of busy |`, "|---|---:|---:|"];
  for (const [name, micros] of rows.slice(0, top)) {
    lines.push(
      `| ${name.replaceAll("|", "\\|")} | ${(micros / 1000).toFixed(0)} | ${((100 * micros) / busy).toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  const [target] = positionals;
  if (!target) {
    process.stderr.write(
      "usage: node dist/bench/profile-summary.js <file.cpuprofile | dir> [--top N]\n",
    );
    process.exit(2);
  }
  const files = profilesIn(target);
  if (files.length === 0) throw new Error(`no .cpuprofile files in ${target}`);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const file of files) {
    addProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, byFunction, byArea);
  }
  const total = [...byArea.values()].reduce((sum, micros) => sum + micros, 0);
  const idle = byArea.get(IDLE) ?? 0;
  const busy = Math.max(1, total - idle);
  const top = Number(values.top);
  process.stdout.write(
    `${files.length} profile(s): ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy ` +
      `(${((100 * busy) / Math.max(1, total)).toFixed(0)}%), ${(idle / 1e6).toFixed(1)} s idle\n\n` +
      `${table("function (self time)", byFunction, busy, top)}\n\n${table("module", byArea, busy, top)}\n`,
  );
}

main();
