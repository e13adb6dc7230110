import {
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  truncate,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { isValidSessionId } from "../../session-id.js";
import { DirectoryLock } from "../../store/jsonl/directory-lock.js";
import { parseHeader } from "../../store/jsonl/header.js";
import { journalSegments } from "../../store/jsonl/journal.js";
import { decodeSegment } from "../../store/jsonl/journal-records.js";
import { journalDirectoryOf, replayLeftJournal } from "../../store/jsonl/journal-replay.js";
import { scanRecords } from "../../store/jsonl/records.js";
import { EXIT, UsageError } from "./connection.js";
import { renderTable } from "./output.js";
import { type Context, confirm } from "./sessions.js";

/** The server's own entries in a data directory (and in each tenant's), never strays. */
const OWN_ENTRIES = new Set([".sessionstore", ".sessionstore.lock"]);
const TENANTS = "tenants";

/** What `doctor` found in one session file, by the jsonl store's own readers. */
export interface FileReport {
  /** The session's name: its id, or `tenant/id` in a tenant's directory. */
  session: string;
  path: string;
  /** "own" (a header this server wrote), "motosan" (motosan's header) or "none". */
  header: "own" | "motosan" | "none";
  /** What the header says the file holds, when it says. */
  headerCount?: number;
  /** Whole records in the file. */
  records: number;
  bytes: number;
  /** Bytes after the last whole record that are no record: a write a crash cut. */
  tornBytes: number;
  /** The first record that is no JSON object while whole ones follow it. */
  corrupt?: { seq: number; offset: number };
  /** Where the good part ends: a repair keeps [0, keep). */
  keep: number;
}

export interface Stray {
  path: string;
  why: string;
}

export interface DoctorReport {
  files: FileReport[];
  strays: Stray[];
  sessions: number;
  messages: number;
  problems: number;
  /**
   * Records of durable appends a server journaled and did not checkpoint (it was killed): the
   * files may lack them until a server starts (or a repair runs), which replays them.
   */
  journalRecords: number;
}

function isProblem(file: FileReport): boolean {
  return file.tornBytes > 0 || file.corrupt !== undefined;
}

/** Checks one session file: its header, then every record, as the server reads them. */
export async function checkFile(path: string, session: string): Promise<FileReport> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const first = Buffer.alloc(Math.min(size, 1 << 20));
    await handle.read(first, 0, first.length, 0);
    const newline = first.indexOf(10);
    const header =
      newline === -1 ? undefined : parseHeader(first.subarray(0, newline).toString("utf8"));
    const dataStart = header ? newline + 1 : 0;
    const scan = await scanRecords(handle, dataStart, size, async () => {});
    const keep = scan.corrupt ? scan.corrupt.offset : scan.end;
    return {
      session,
      path,
      header: header === undefined ? "none" : header.fileBytes === undefined ? "motosan" : "own",
      ...(header ? { headerCount: header.messageCount } : {}),
      records: scan.count,
      bytes: size,
      tornBytes: scan.corrupt ? 0 : size - scan.end,
      ...(scan.corrupt ? { corrupt: scan.corrupt } : {}),
      keep,
    };
  } finally {
    await handle.close();
  }
}

/** Every session file of the data directory and of its tenants' directories, and the strays. */
export async function examine(dataDir: string): Promise<DoctorReport> {
  const report: DoctorReport = {
    files: [],
    strays: [],
    sessions: 0,
    messages: 0,
    problems: 0,
    journalRecords: 0,
  };
  const segments = await journalSegments(journalDirectoryOf(dataDir)).catch(() => []);
  for (const segment of segments) {
    report.journalRecords += decodeSegment(await readFile(segment)).records.length;
  }
  const directories: { path: string; tenant: string }[] = [{ path: dataDir, tenant: "" }];
  const tenantsPath = join(dataDir, TENANTS);
  const tenants = await readdir(tenantsPath, { withFileTypes: true }).catch(() => []);
  for (const entry of tenants) {
    if (entry.isDirectory())
      directories.push({ path: join(tenantsPath, entry.name), tenant: entry.name });
    else
      report.strays.push({ path: join(tenantsPath, entry.name), why: "not a tenant's directory" });
  }
  for (const { path, tenant } of directories) {
    const names = (
      await readdir(path).catch((error: NodeJS.ErrnoException) => {
        throw new UsageError(
          `cannot read ${path}: ${error.code === "ENOENT" ? "no such directory" : error.message}`,
        );
      })
    ).sort();
    for (const name of names) {
      if (OWN_ENTRIES.has(name) || (tenant === "" && name === TENANTS)) continue;
      const entryPath = join(path, name);
      const id = name.endsWith(".jsonl") ? name.slice(0, -".jsonl".length) : undefined;
      const stats = await lstat(entryPath);
      if (id === undefined || !isValidSessionId(id)) {
        // Hidden names are temporary files and the like: the server skips them too.
        if (!name.startsWith("."))
          report.strays.push({ path: entryPath, why: "not a session file name (<id>.jsonl)" });
        continue;
      }
      if (!stats.isFile()) {
        report.strays.push({
          path: entryPath,
          why: stats.isSymbolicLink() ? "a symbolic link (never followed)" : "not a regular file",
        });
        continue;
      }
      const file = await checkFile(entryPath, tenant === "" ? id : `${tenant}/${id}`);
      report.files.push(file);
      report.sessions++;
      report.messages += file.records;
      if (isProblem(file)) report.problems++;
    }
  }
  report.problems += report.strays.length;
  return report;
}

function describeProblem(file: FileReport): string {
  if (file.corrupt) {
    return `corrupt record at seq ${file.corrupt.seq} (byte ${file.corrupt.offset}), whole records after it`;
  }
  if (file.tornBytes > 0) return `torn tail: ${file.tornBytes} bytes after the last whole record`;
  return "ok";
}

/** `doctor --data-dir D`: offline (reads only); exit 0 when all is well, 1 when not. */
export async function doctor(context: Context, options: { dataDir: string }): Promise<number> {
  const report = await examine(options.dataDir);
  const { output } = context;
  if (output.json) {
    output.printJson(report);
    return report.problems > 0 ? EXIT.failure : EXIT.ok;
  }
  const { color } = output;
  const rows = report.files.map((file) => [
    file.session,
    file.header,
    String(file.records),
    file.headerCount === undefined || file.headerCount === file.records
      ? ""
      : `header says ${file.headerCount}`,
    isProblem(file) ? color.red(describeProblem(file)) : color.green("ok"),
  ]);
  output.out(renderTable(output, ["SESSION", "HEADER", "RECORDS", "NOTE", "STATE"], rows));
  for (const stray of report.strays)
    output.out(`${color.yellow("stray")} ${stray.path}: ${stray.why}\n`);
  if (report.journalRecords > 0) {
    output.out(
      `${color.yellow("journal")} ${report.journalRecords} records of durable appends a server did not checkpoint (it stopped without shutting down): the files above may lack them until a server starts on ${options.dataDir}, or a repair runs, which replay them\n`,
    );
  }
  output.out(
    `${report.sessions} session files, ${report.messages} records; ` +
      (report.problems === 0
        ? "no problem found\n"
        : `${report.problems} problems (sessionstore repair --data-dir ${options.dataDir} <id> mends a damaged file)\n`),
  );
  return report.problems > 0 ? EXIT.failure : EXIT.ok;
}

/**
 * `repair --data-dir D ID`: cuts a torn tail, or quarantines a corrupt record and everything after
 * it, after saying so (and asking, on a terminal, unless --yes). The file as it was is kept under
 * `.sessionstore/repair/`, as are the bytes cut off; the sidecar index is removed (the server
 * rebuilds it). Takes the directory's lock: no server may run on it meanwhile.
 */
export async function repair(
  context: Context,
  sessionId: string,
  options: { dataDir: string; tenant?: string; yes?: boolean; dryRun?: boolean },
): Promise<number> {
  const { output } = context;
  if (!isValidSessionId(sessionId))
    throw new UsageError(`not a session id: ${JSON.stringify(sessionId)}`);
  const directory = options.tenant
    ? join(options.dataDir, TENANTS, options.tenant)
    : options.dataDir;
  const path = join(directory, `${sessionId}.jsonl`);
  const stats = await lstat(path).catch(() => undefined);
  if (!stats?.isFile()) {
    output.err(`sessionstore repair: no session file ${path}\n`);
    return EXIT.notFound;
  }
  const lock = await DirectoryLock.acquire(options.dataDir).catch((error: Error) => {
    throw new Error(`${error.message}: stop the server before a repair`);
  });
  try {
    // What the journal holds belongs in the files before they are judged.
    const replayed = await replayLeftJournal(options.dataDir, pino({ level: "silent" }));
    if (replayed.replayed > 0 && !output.json) {
      output.out(
        `replayed ${replayed.replayed} journal records into ${replayed.files} files first\n`,
      );
    }
    const file = await checkFile(path, sessionId);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const repairs = join(directory, ".sessionstore", "repair");
    const backup = join(repairs, `${sessionId}.${stamp}.jsonl`);
    const quarantine = join(repairs, `${sessionId}.${stamp}.cut`);
    const plan = {
      session: sessionId,
      path,
      problem: describeProblem(file),
      keepBytes: file.keep,
      keepRecords: file.records,
      cutBytes: file.bytes - file.keep,
      backup,
      quarantine,
    };
    if (!isProblem(file)) {
      if (output.json) output.printJson({ ...plan, repaired: false });
      else output.out(`${sessionId}: ${file.records} whole records, nothing to repair\n`);
      return EXIT.ok;
    }
    if (!output.json) {
      output.out(
        `${sessionId}: ${plan.problem}\n` +
          `repair will keep the first ${plan.keepBytes} bytes (${plan.keepRecords} records) of ${path},\n` +
          `move the ${plan.cutBytes} bytes after them to ${quarantine},\n` +
          `and keep the file as it is now in ${backup}\n`,
      );
    }
    if (options.dryRun) {
      if (output.json) output.printJson({ ...plan, repaired: false });
      return EXIT.ok;
    }
    if (!options.yes) {
      if (!output.interactive)
        throw new UsageError("repair changes the file: pass --yes when not on a terminal");
      if (!(await confirm("repair it?"))) {
        output.err("nothing changed\n");
        return EXIT.failure;
      }
    }
    await mkdir(repairs, { recursive: true });
    await copyFile(path, backup);
    const handle = await open(path, "r");
    try {
      const cut = Buffer.alloc(plan.cutBytes);
      await handle.read(cut, 0, cut.length, file.keep);
      await writeFile(quarantine, cut);
    } finally {
      await handle.close();
    }
    await truncate(path, file.keep);
    for (const sidecar of [".idx", ".times"]) {
      await rm(join(directory, ".sessionstore", "index", `${sessionId}${sidecar}`), {
        force: true,
      });
    }
    if (output.json) output.printJson({ ...plan, repaired: true });
    else output.out(`repaired ${sessionId}: ${file.records} records kept\n`);
    return EXIT.ok;
  } finally {
    await lock.release();
  }
}
