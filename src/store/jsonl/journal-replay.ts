import { constants } from "node:fs";
import { type FileHandle, lstat, open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { isValidSessionId } from "../../session-id.js";
import { isValidTenant } from "../../tenant.js";
import { isNotFound, syncDirectory, syncFileSystem, writeFully } from "./file-io.js";
import { journalSegments } from "./journal.js";
import { type AppendRecord, decodeSegment } from "./journal-records.js";
import { OWN_DIRECTORY, TENANTS_DIRECTORY } from "./tenant-directory.js";

/** Where a data directory's journal lives. */
export function journalDirectoryOf(root: string): string {
  return join(root, OWN_DIRECTORY, "journal");
}

/**
 * For an offline command that holds the directory's lock (a repair): replays the journal a
 * server left into the session files, makes them durable and deletes the journal, as a server
 * start would. Resolves to what the replay did (no segments: nothing to do).
 */
export async function replayLeftJournal(root: string, log: Logger): Promise<ReplaySummary> {
  const directory = journalDirectoryOf(root);
  const segments = await journalSegments(directory).catch((error: unknown) => {
    if (isNotFound(error)) return [];
    throw error;
  });
  const summary = await replayJournal(root, segments, log);
  if (segments.length === 0) return summary;
  await syncFileSystem(root);
  for (const segment of segments) await unlink(segment);
  await syncDirectory(directory);
  return summary;
}

/** What a replay did, for the log. */
export interface ReplaySummary {
  segments: number;
  records: number;
  /** Records whose bytes a session file lacked, and got. */
  replayed: number;
  /** Bytes at the ends of segments that a crash tore (ignored). */
  tornBytes: number;
  /** Session files replayed into. */
  files: number;
}

/**
 * Writes into the session files what the journal's segments (paths, oldest first) hold and the
 * files lack: after a crash, acknowledged durable messages may be in the journal only. Each
 * append record says which bytes a file holds from an offset, so replaying twice (a crash
 * during the replay) writes the same bytes again: nothing is duplicated. Records before a
 * forget record of their file are skipped; so is a file that is no longer the one the journal
 * wrote to (another inode), or that ends before a record starts (it was cut outside the server:
 * nothing is written past a gap). The caller makes the files durable afterwards.
 */
export async function replayJournal(
  root: string,
  segmentPaths: readonly string[],
  log: Logger,
): Promise<ReplaySummary> {
  const summary: ReplaySummary = {
    segments: segmentPaths.length,
    records: 0,
    replayed: 0,
    tornBytes: 0,
    files: 0,
  };
  const appends = new Map<string, AppendRecord[]>();
  for (const path of segmentPaths) {
    const bytes = await readFile(path);
    const { records, validBytes } = decodeSegment(bytes);
    summary.records += records.length;
    if (validBytes < bytes.length) {
      summary.tornBytes += bytes.length - validBytes;
      log.warn(
        { segment: path, tornBytes: bytes.length - validBytes },
        "the journal ends in a torn record (a crash during its write); the record was never acknowledged and is ignored",
      );
    }
    for (const record of records) {
      if (record.kind === "forget") appends.delete(record.path);
      else appends.set(record.path, [...(appends.get(record.path) ?? []), record]);
    }
  }
  for (const [path, records] of appends) {
    const replayed = await replayFile(root, path, records, log);
    summary.replayed += replayed;
    if (replayed > 0) summary.files++;
  }
  return summary;
}

/**
 * Replays `records` (all of one file since it was last forgotten) into it; resolves to how many
 * it wrote. They are applied by offset, not in journal order: a checkpoint journals again, after
 * newer records, bytes still ahead of the file, and all of them agree where they overlap (the
 * file is only appended to between forget records).
 */
async function replayFile(
  root: string,
  path: string,
  records: readonly AppendRecord[],
  log: Logger,
): Promise<number> {
  if (!(await isSessionFilePath(root, path))) {
    log.error(
      { path },
      "the journal names a file that is not a session file; its records are ignored",
    );
    return 0;
  }
  let handle: FileHandle;
  try {
    handle = await open(join(root, path), constants.O_RDWR | constants.O_NOFOLLOW);
  } catch (error) {
    if (isNotFound(error) || (error as NodeJS.ErrnoException).code === "ELOOP") return 0;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return 0;
    let size = stat.size;
    let replayed = 0;
    const byOffset = [...records].sort((a, b) => a.start - b.start);
    for (const record of byOffset) {
      if (record.inode !== stat.ino) continue;
      const end = record.start + record.bytes.length;
      if (size >= end) continue;
      if (size < record.start) {
        log.error(
          { path, size, recordStart: record.start },
          "a session file ends before bytes the journal holds for it (it was cut outside the server); they are not replayed",
        );
        break;
      }
      await writeFully(handle, record.bytes, record.start);
      size = end;
      replayed++;
    }
    if (replayed > 0)
      log.info({ path, records: replayed }, "replayed journal records into a session file");
    return replayed;
  } finally {
    await handle.close();
  }
}

/**
 * Whether `path` (from the journal) names a session file of the data directory, through real
 * directories only: `<id>.jsonl` or `tenants/<tenant>/<id>.jsonl`.
 */
async function isSessionFilePath(root: string, path: string): Promise<boolean> {
  const parts = path.split("/");
  const name = parts.at(-1) ?? "";
  if (!name.endsWith(".jsonl") || !isValidSessionId(name.slice(0, -".jsonl".length))) return false;
  if (parts.length === 1) return true;
  if (parts.length !== 3 || parts[0] !== TENANTS_DIRECTORY || !isValidTenant(parts[1] ?? ""))
    return false;
  for (const directory of [
    join(root, TENANTS_DIRECTORY),
    join(root, TENANTS_DIRECTORY, parts[1] ?? ""),
  ]) {
    const stat = await lstat(directory).catch(() => undefined);
    if (!stat?.isDirectory()) return false;
  }
  return true;
}
