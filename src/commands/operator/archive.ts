import { createReadStream } from "node:fs";
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from "node:fs/promises";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip, gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import type { SessionMeta } from "../../../gen/sessionstore/v1/session_store.js";
import { isValidSessionId } from "../../session-id.js";
import { parseHeader } from "../../store/jsonl/header.js";
import { type CopyProgress, terminalProgress } from "../copy.js";
import { EXIT, isServiceError, UsageError } from "./connection.js";
import type { Output } from "./output.js";
import type { Context } from "./sessions.js";

/*
 * The export formats.
 *
 * A directory holds one motosan-format file per session, `<session id>.jsonl`: line 1 motosan's
 * header `{"session_id","created_at_ms","agent_loop_version","message_count"}` (plus `labels`
 * when the session has some, and `first_seq` when it was trimmed: motosan ignores both), then
 * each message as stored, one per line. Such a directory is a data directory too: a server, or
 * motosan, can open it as it is.
 *
 * A `.jsonl.gz` archive is those files concatenated, in session id order, gzipped: each
 * header's `message_count` says how many message lines follow it before the next header. Each
 * session is a gzip member of its own (gunzip reads them as one stream), which is what lets an
 * interrupted export resume: `<archive>.partial` is written, and `<archive>.partial.progress`
 * records after each session the length of the complete members and the last session id; a run
 * again cuts the partial file there and goes on after that id. The archive gets its name once
 * complete. A directory export resumes by skipping the sessions whose file exists: each is
 * written as `.<id>.jsonl.tmp` (hidden from a server) and renamed when whole.
 */

const ARCHIVE = /\.jsonl\.gz$/;
/** Messages per Append request when importing. */
const BATCH_MESSAGES = 500;
const BATCH_BYTES = 1 << 20;

interface SessionFile {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  labels: Record<string, string>;
  firstSeq: number;
  messages: string[];
}

function headerLine(session: SessionFile): string {
  return JSON.stringify({
    session_id: session.sessionId,
    created_at_ms: session.createdAtMs,
    agent_loop_version: session.agentLoopVersion,
    message_count: session.messages.length,
    ...(Object.keys(session.labels).length > 0 ? { labels: session.labels } : {}),
    ...(session.firstSeq > 0 ? { first_seq: session.firstSeq } : {}),
  });
}

/** A session as its motosan file's bytes. */
function fileBytes(session: SessionFile): Buffer {
  const lines = [headerLine(session), ...session.messages];
  return Buffer.from(`${lines.join("\n")}\n`, "utf8");
}

export interface ExportSummary {
  sessions: number;
  messages: number;
  bytes: number;
  /** Sessions an earlier, interrupted run exported already. */
  skipped: number;
  ms: number;
  out: string;
}

function progressFor(output: Output, verb: string): CopyProgress {
  return output.json
    ? { start() {}, update() {}, stop() {} }
    : terminalProgress(process.stderr, verb);
}

export async function exportSessions(
  context: Context,
  out: string,
  options: { prefix?: string },
): Promise<number> {
  const started = Date.now();
  const connection = context.connection();
  const sessions: SessionMeta[] = [];
  for await (const meta of connection.list({ prefix: options.prefix })) sessions.push(meta);
  const target = ARCHIVE.test(out) ? await archiveTarget(out) : await directoryTarget(out);
  const summary: ExportSummary = { sessions: 0, messages: 0, bytes: 0, skipped: 0, ms: 0, out };
  const progress = progressFor(context.output, "exporting");
  progress.start(sessions.length);
  try {
    for (const [i, meta] of sessions.entries()) {
      if (target.done(meta.sessionId)) summary.skipped++;
      else {
        const messages: string[] = [];
        for await (const { text } of connection.load(meta.sessionId, {
          fromSeq: meta.firstSeq,
          limit: 0,
          last: false,
        })) {
          messages.push(text);
        }
        const bytes = fileBytes({ ...meta, messages });
        await target.write(meta.sessionId, bytes);
        summary.sessions++;
        summary.messages += messages.length;
        summary.bytes += bytes.length;
      }
      progress.update(i + 1, summary.messages);
    }
    await target.finish();
  } finally {
    progress.stop();
  }
  summary.ms = Date.now() - started;
  const { output } = context;
  if (output.json) output.printJson(summary);
  else {
    output.out(
      `exported ${summary.sessions} sessions (${summary.messages} messages, ${summary.bytes} bytes) to ${out} in ${(summary.ms / 1000).toFixed(1)} s` +
        `${summary.skipped > 0 ? `; ${summary.skipped} exported by an earlier run, skipped` : ""}\n`,
    );
  }
  return EXIT.ok;
}

interface ExportTarget {
  /** Whether an earlier run exported this session already. */
  done(sessionId: string): boolean;
  write(sessionId: string, bytes: Buffer): Promise<void>;
  finish(): Promise<void>;
}

async function directoryTarget(directory: string): Promise<ExportTarget> {
  await mkdir(directory, { recursive: true });
  const present = new Set((await readdir(directory)).filter((name) => name.endsWith(".jsonl")));
  return {
    done: (sessionId) => present.has(`${sessionId}.jsonl`),
    async write(sessionId, bytes) {
      const temporary = join(directory, `.${sessionId}.jsonl.tmp`);
      await writeDurably(temporary, bytes);
      await rename(temporary, join(directory, `${sessionId}.jsonl`));
    },
    finish: async () => {},
  };
}

async function writeDurably(path: string, bytes: Buffer, flags = "w"): Promise<void> {
  const file = await open(path, flags);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
}

interface ArchiveProgress {
  bytes: number;
  lastSessionId: string;
}

async function archiveTarget(archive: string): Promise<ExportTarget> {
  if (await exists(archive)) {
    throw new UsageError(`${archive} exists: remove it, or export to another name`);
  }
  const partial = `${archive}.partial`;
  const progressPath = `${partial}.progress`;
  let state: ArchiveProgress = { bytes: 0, lastSessionId: "" };
  if (await exists(progressPath)) {
    state = JSON.parse(await readFile(progressPath, "utf8")) as ArchiveProgress;
    // What was written after the last complete session is cut off, and written again.
    await truncate(partial, state.bytes);
  } else {
    await writeFile(partial, "");
  }
  return {
    // Sessions are exported in id order: those up to the recorded one are in the archive.
    done: (sessionId) => state.lastSessionId !== "" && sessionId <= state.lastSessionId,
    async write(sessionId, bytes) {
      const member = gzipSync(bytes);
      await writeDurably(partial, member, "a");
      state = { bytes: state.bytes + member.length, lastSessionId: sessionId };
      await writeFile(`${progressPath}.tmp`, JSON.stringify(state));
      await rename(`${progressPath}.tmp`, progressPath);
    },
    async finish() {
      await rename(partial, archive);
      await rm(progressPath, { force: true });
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export interface ImportSummary {
  sessions: number;
  /** Messages the server did not have and got. */
  appended: number;
  /** Messages the server had already, byte for byte (an earlier, interrupted import). */
  present: number;
  /** Sessions the server holds different messages of: left as they are. */
  conflicts: string[];
  /** Sessions with no message: a session exists once it has one. */
  empty: string[];
  /** Sessions whose file ends in a torn record (a crash mid-write): imported without it. */
  torn: string[];
  ms: number;
}

export async function importSessions(context: Context, from: string): Promise<number> {
  const started = Date.now();
  const connection = context.connection();
  const summary: ImportSummary = {
    sessions: 0,
    appended: 0,
    present: 0,
    conflicts: [],
    empty: [],
    torn: [],
    ms: 0,
  };
  const isArchive = ARCHIVE.test(from);
  const files = isArchive ? [] : await sessionFiles(from);
  const progress = progressFor(context.output, "importing");
  // An archive's session count is known once read: its bar counts up without a total.
  progress.start(isArchive ? 0 : files.length);
  try {
    const sessions = isArchive ? readArchive(from) : readDirectory(from, files, summary);
    for await (const session of sessions) {
      summary.sessions++;
      if (session.messages.length === 0) summary.empty.push(session.sessionId);
      else await importSession(session);
      progress.update(summary.sessions, summary.appended + summary.present);
    }
  } finally {
    progress.stop();
  }

  async function importSession(session: SessionFile): Promise<void> {
    const before = await connection.meta(session.sessionId).then(
      (meta) => meta.messageCount,
      (error: unknown) => {
        if (isServiceError(error) && error.code === status.NOT_FOUND) return 0;
        throw error;
      },
    );
    try {
      const after = await connection.appendAll(session.sessionId, batchesOf(session.messages), {
        from: 0,
        labels: session.labels,
      });
      const present = Math.min(before, session.messages.length);
      summary.present += present;
      summary.appended += Math.max(0, Math.min(after, session.messages.length) - present);
    } catch (error) {
      if (isServiceError(error) && error.code === status.ABORTED) {
        summary.conflicts.push(session.sessionId);
      } else throw error;
    }
  }

  summary.ms = Date.now() - started;
  const { output } = context;
  if (output.json) output.printJson(summary);
  else output.out(describeImport(summary));
  return summary.conflicts.length > 0 ? EXIT.conflict : EXIT.ok;
}

function describeImport(summary: ImportSummary): string {
  const list = (ids: string[]) => `${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", ..." : ""}`;
  const lines = [
    `imported ${summary.sessions} sessions in ${(summary.ms / 1000).toFixed(1)} s: ` +
      `${summary.appended} messages appended, ${summary.present} already there`,
  ];
  if (summary.empty.length > 0) {
    lines.push(
      `${summary.empty.length} sessions hold no message and were not created: ${list(summary.empty)}`,
    );
  }
  if (summary.torn.length > 0) {
    lines.push(
      `${summary.torn.length} sessions end in a torn record, imported without it: ${list(summary.torn)}`,
    );
  }
  if (summary.conflicts.length > 0) {
    lines.push(
      `${summary.conflicts.length} sessions hold other messages on the server and were left as they are: ${list(summary.conflicts)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Messages in Append requests of at most BATCH_MESSAGES messages and about BATCH_BYTES. */
function batchesOf(messages: string[]): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const message of messages) {
    if (
      batch.length === BATCH_MESSAGES ||
      (batch.length > 0 && bytes + message.length > BATCH_BYTES)
    ) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(message);
    bytes += message.length;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** The session files of a directory, by name: `<id>.jsonl`, not hidden ones. */
async function sessionFiles(directory: string): Promise<string[]> {
  const names = await readdir(directory).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(
      `cannot read ${directory}: ${error.code === "ENOENT" ? "no such directory" : error.message}`,
    );
  });
  return names
    .filter((name) => name.endsWith(".jsonl") && isValidSessionId(name.slice(0, -".jsonl".length)))
    .sort();
}

/** Each file of a directory as a session, read as motosan's reader reads it (header optional). */
async function* readDirectory(
  directory: string,
  files: string[],
  summary: ImportSummary,
): AsyncGenerator<SessionFile> {
  for (const name of files) {
    const text = await readFile(join(directory, name), "utf8");
    const lines = text.split("\n");
    const terminated = lines.at(-1) === "";
    if (terminated) lines.pop();
    const sessionId = basename(name, ".jsonl");
    const first = lines[0] ?? "";
    const header = parseHeader(first);
    if (header) lines.shift();
    // A last line without its newline that is no JSON is a write a crash cut: not a message.
    if (!terminated && lines.length > 0 && !isJson(lines.at(-1) as string)) {
      lines.pop();
      summary.torn.push(sessionId);
    }
    yield {
      sessionId,
      createdAtMs: header?.createdAtMs ?? 0,
      agentLoopVersion: header?.agentLoopVersion ?? "",
      labels: header ? labelsOf(first) : {},
      firstSeq: 0,
      messages: lines.filter((line) => line.trim() !== ""),
    };
  }
}

/** The sessions of an archive, in order: each header, then as many lines as it counts. */
async function* readArchive(path: string): AsyncGenerator<SessionFile> {
  const lines = createInterface({
    input: createReadStream(path).pipe(createGunzip()),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let session: SessionFile | undefined;
  let expected = 0;
  for await (const line of lines) {
    if (session === undefined) {
      const header = parseHeader(line);
      if (!header) throw new Error(`${path}: expected a session header, found another line`);
      session = {
        sessionId: header.sessionId,
        createdAtMs: header.createdAtMs,
        agentLoopVersion: header.agentLoopVersion,
        labels: labelsOf(line),
        firstSeq: header.firstSeq ?? 0,
        messages: [],
      };
      expected = header.messageCount;
    } else session.messages.push(line);
    if (session.messages.length === expected) {
      yield session;
      session = undefined;
    }
  }
  if (session !== undefined) {
    throw new Error(
      `${path} ends inside session ${session.sessionId} (${session.messages.length} of ${expected} messages): the archive is cut short`,
    );
  }
}

function labelsOf(headerLine: string): Record<string, string> {
  try {
    const { labels } = JSON.parse(headerLine) as { labels?: unknown };
    if (typeof labels !== "object" || labels === null) return {};
    return Object.fromEntries(
      Object.entries(labels).filter(
        (entry): entry is [string, string] => typeof entry[1] === "string",
      ),
    );
  } catch {
    return {};
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
