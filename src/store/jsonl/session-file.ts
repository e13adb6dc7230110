import type { Stats } from "node:fs";
import { type FileHandle, lstat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../../errors.js";
import { AGENT_LOOP_VERSION } from "../storage.js";
import { type StorageEvents, secondsSince } from "../storage-events.js";
import { isNotFound, storageFailure, writeFully } from "./file-io.js";
import { CREATE_NEW, type HandlePool, OPEN_OR_CREATE } from "./handle-pool.js";
import { headerWidthFor, parseHeader, renderHeader, type SessionHeader } from "./header.js";
import {
  decodeHeader,
  encodeHeader,
  entriesFor,
  entryOffset,
  INDEX_ENTRY_BYTES,
  INDEX_HEADER_BYTES,
  type IndexedFile,
  type IndexHeader,
  type RecordEntry,
  readEntries,
  recordChecksum,
  sameFile,
} from "./record-index.js";
import { scanRecords } from "./records.js";

/** What a session file needs from its storage. */
export interface FileContext {
  /** The data directory, as the server resolved it at start. */
  directory: string;
  /** Where the sidecar indexes live (inside the data directory). */
  indexDirectory: string;
  pool: HandlePool;
  log: Logger;
  /** Makes the data directory's entries durable; concurrent calls share one fsync. */
  syncDirectory(): Promise<void>;
  /** Files not changed since this time (ms) were made durable by the start-up sync. */
  syncedBeforeMs: number;
  /** Counters of the work done, logged when the storage closes (and read by the benchmarks). */
  stats: WriteStats;
  events: StorageEvents;
}

export interface WriteStats {
  /** Appends that wrote lines. */
  writes: number;
  messages: number;
  bytes: number;
  /** fdatasync calls on session files. */
  fileSyncs: number;
}

/** Bytes of records per page read for Load and Watch. */
const PAGE_BYTES = 256 << 10;
/** Index entries read at once when serving a range. */
const ENTRIES_PER_READ = 4096;
/** Line 1 is read up to this many bytes to recognise a header (headers are far shorter). */
const FIRST_LINE_BYTES = 4096;

export function sessionPath(directory: string, sessionId: string): string {
  return join(directory, `${sessionId}.jsonl`);
}

/**
 * Our own layout (a padded header we rewrite in place after each append, so `message_count`
 * stays right) or a file someone else wrote (motosan's header, or none): such a file is never
 * rewritten nor replaced; new records are appended to it and its first line is left as it is.
 */
type Layout = { kind: "own"; headerWidth: number } | { kind: "foreign" };

interface FileState {
  layout: Layout;
  inode: number;
  dataStart: number;
  firstLine: number;
  createdAtMs: number;
  agentLoopVersion: string;
  /** Records in the file (all of them indexed). */
  count: number;
  /** Offset just after the last record's line; the file's length. */
  end: number;
  /** Whether the last record has no newline after it (a file someone else wrote). */
  unterminated: boolean;
  /** Records [0, durable) are on disk. */
  durable: number;
  /** Whether the file's directory entry is known to be durable. */
  entrySynced: boolean;
  updatedAtMs: number;
  /** Seq of the first record known to be damaged. */
  corruptSeq?: number;
}

/**
 * Thrown when a session's file is not the one the server knows any more (replaced, deleted,
 * appended to or cut by someone else). Nothing is written to it; the storage forgets what it
 * knew and reads the file anew.
 */
export class FileChangedError extends SessionStoreError {
  constructor(
    sessionId: string,
    /** What happened to the file: "was replaced", "was appended to"... */
    readonly what: string,
  ) {
    super(
      Code.Unavailable,
      `the file of session ${sessionId} ${what} outside the server, which reads it anew: retry`,
    );
  }
}

/**
 * One session's JSONL file in motosan's format (a header line, then one message per line) and
 * its sidecar index. Appends write only the new lines, so a flush costs the same whatever the
 * session's length; reads seek through the index and check every record's checksum. The caller
 * runs one write (append, sync, truncate) at a time; reads may overlap it and must ask only for
 * records the file held when they started.
 */
export class SessionFile {
  private constructor(
    private readonly context: FileContext,
    readonly sessionId: string,
    private readonly state: FileState,
  ) {}

  /** Records in the file. */
  get count(): number {
    return this.state.count;
  }

  /** Records [0, durableCount) are on disk. */
  get durableCount(): number {
    return this.state.durable;
  }

  get createdAtMs(): number {
    return this.state.createdAtMs;
  }

  get agentLoopVersion(): string {
    return this.state.agentLoopVersion;
  }

  /** When the file was last appended to. */
  get updatedAtMs(): number {
    return Math.round(this.state.updatedAtMs);
  }

  /** Seq of the first record known to be damaged, if any. */
  get corruptSeq(): number | undefined {
    return this.state.corruptSeq;
  }

  get inode(): number {
    return this.state.inode;
  }

  private get path(): string {
    return sessionPath(this.context.directory, this.sessionId);
  }

  private get indexPath(): string {
    return indexPath(this.context, this.sessionId);
  }

  /**
   * Creates the session's file with our header and no records. When a file by that name exists
   * (it appeared since the caller looked), it is opened instead: never replaced.
   */
  static async create(
    context: FileContext,
    sessionId: string,
    createdAtMs: number,
  ): Promise<SessionFile> {
    const path = sessionPath(context.directory, sessionId);
    const header = { sessionId, createdAtMs, agentLoopVersion: AGENT_LOOP_VERSION };
    const headerWidth = headerWidthFor({ ...header, messageCount: 0 });
    const end = headerWidth + 1;
    let inode: number;
    try {
      inode = await context.pool.use(
        path,
        async (handle) => {
          await writeFully(
            handle,
            renderHeader({ ...header, messageCount: 0, fileBytes: end }, headerWidth),
            0,
          );
          return (await handle.stat()).ino;
        },
        { flags: CREATE_NEW },
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") {
        const existing = await SessionFile.open(context, sessionId);
        if (existing) return existing;
      }
      throw storageFailure("create", sessionId, error);
    }
    const file = new SessionFile(context, sessionId, {
      layout: { kind: "own", headerWidth },
      inode,
      dataStart: end,
      firstLine: ownFirstLine(sessionId, headerWidth, createdAtMs, AGENT_LOOP_VERSION),
      createdAtMs,
      agentLoopVersion: AGENT_LOOP_VERSION,
      count: 0,
      end,
      unterminated: false,
      durable: 0,
      entrySynced: false,
      updatedAtMs: createdAtMs,
    });
    await file.resetIndex();
    return file;
  }

  /**
   * Opens the session's existing file, or resolves to undefined when there is none. Refuses
   * (FAILED_PRECONDITION) an entry that is a symbolic link or not a regular file. Repairs what a
   * crash can leave (records the index lacks are validated and indexed, a torn last record is
   * cut off and logged) and marks the session corrupt at the first record that is not what was
   * written.
   */
  static async open(context: FileContext, sessionId: string): Promise<SessionFile | undefined> {
    const path = sessionPath(context.directory, sessionId);
    // One handle at a time (index, then data, then index): holding two from a full pool while
    // waiting for another would deadlock concurrent first uses.
    const index = await readIndexTail(context, sessionId);
    let lease: Awaited<ReturnType<HandlePool["acquire"]>>;
    try {
      lease = await context.pool.acquire(path, { verify: checkRegularFile });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw refusedOrFailed(sessionId, error);
    }
    let recovered: Recovered;
    try {
      recovered = await recover(context, sessionId, lease.handle, index);
    } catch (error) {
      throw error instanceof SessionStoreError ? error : storageFailure("open", sessionId, error);
    } finally {
      lease.release();
    }
    const file = new SessionFile(context, sessionId, recovered.state);
    try {
      await file.useIndex((handle) => applyIndexUpdate(handle, recovered.index));
    } catch (error) {
      throw storageFailure("open", sessionId, error);
    }
    return file;
  }

  /**
   * Appends `messages` as new records; with `sync`, makes every record durable. On failure
   * nothing of the call remains in the file (it is cut back), unless cutting back failed too,
   * which the error then says.
   */
  async append(messages: readonly string[], sync: boolean): Promise<void> {
    if (messages.length > 0) await this.writeRecords(messages);
    if (sync) await this.sync();
  }

  /** Makes every record durable (and a new file's directory entry). */
  async sync(): Promise<void> {
    const { state } = this;
    if (state.durable === state.count && state.entrySynced) return;
    const count = state.count;
    const started = performance.now();
    try {
      await this.useData((handle) => handle.datasync());
      this.context.stats.fileSyncs++;
      if (!state.entrySynced) await this.context.syncDirectory();
    } catch (error) {
      throw storageFailure("sync", this.sessionId, error, "maybe stored");
    }
    this.context.events.synced(secondsSince(started));
    state.entrySynced = true;
    state.durable = Math.max(state.durable, count);
    // A hint for the next open (the index itself is never fsynced).
    await this.useIndex((handle) => writeFully(handle, this.indexHeader(), 0)).catch(() => {});
  }

  /**
   * Cuts the file back to its first `count` records (ones this server appended and whose
   * requests failed), durably.
   */
  async truncate(count: number): Promise<void> {
    const { state } = this;
    if (count >= state.count) return;
    const [first] = await this.useIndex((handle) => readEntries(handle, count, 1));
    const end = (first as RecordEntry).start;
    await this.useData(async (handle) => {
      await handle.truncate(end);
      await this.rewriteHeader(handle, count, end);
      await handle.datasync();
    });
    await this.useIndex((handle) => handle.truncate(entryOffset(count)));
    Object.assign(state, { count, end, unterminated: false });
    state.durable = Math.min(state.durable, count);
  }

  /**
   * Reads records [from, from + count) in pages, checking each against its index entry: a record
   * that is not what was appended is DATA_LOSS naming its seq (or, if the whole file changed
   * under the server, a FileChangedError).
   */
  async *read(from: number, count: number): AsyncGenerator<string[]> {
    const to = from + count;
    let buffer = Buffer.allocUnsafe(PAGE_BYTES);
    for (let seq = from; seq < to; ) {
      const wanted = Math.min(to - seq, ENTRIES_PER_READ);
      const entries = await this.useIndex((handle) => readEntries(handle, seq, wanted));
      for (let next = 0; next < entries.length; ) {
        const page = pageOf(entries, next);
        const first = entries[next] as RecordEntry;
        const last = entries[next + page - 1] as RecordEntry;
        const bytes = last.start + last.lineLength - first.start;
        if (bytes > buffer.length) buffer = Buffer.allocUnsafe(bytes);
        const data = buffer;
        const { bytesRead } = await this.useData((handle) =>
          handle.read(data, 0, bytes, first.start),
        );
        const messages: string[] = [];
        for (let i = 0; i < page; i++) {
          const entry = entries[next + i] as RecordEntry;
          const offset = entry.start - first.start;
          const line = data.subarray(offset, offset + entry.lineLength);
          if (offset + entry.lineLength > bytesRead || recordChecksum(line) !== entry.crc) {
            throw await this.damaged(seq + i);
          }
          messages.push(recordText(line));
        }
        yield messages;
        next += page;
        seq += page;
      }
    }
  }

  /** Deletes the file and its index. The caller syncs the directory. */
  async remove(): Promise<boolean> {
    this.context.pool.discard(this.path);
    this.context.pool.discard(this.indexPath);
    let existed = true;
    try {
      await unlink(this.path);
    } catch (error) {
      if (!isNotFound(error)) throw storageFailure("delete", this.sessionId, error);
      existed = false;
    }
    await unlink(this.indexPath).catch(() => undefined);
    return existed;
  }

  private async writeRecords(messages: readonly string[]): Promise<void> {
    const { state } = this;
    const before = { count: state.count, end: state.end, unterminated: state.unterminated };
    // A last record someone else left without a newline gets one, so records never merge.
    const prefix = state.unterminated ? "\n" : "";
    const lines = Buffer.from(`${prefix}${messages.join("\n")}\n`, "utf8");
    const start = before.end + prefix.length;
    const entries = entriesFor(lines.subarray(prefix.length), start);
    const after = {
      count: before.count + messages.length,
      end: before.end + lines.length,
      unterminated: false,
    };
    const started = performance.now();
    try {
      await this.useData(async (handle) => {
        await this.checkUnchanged(handle);
        await writeFully(handle, lines, before.end);
        await this.rewriteHeader(handle, after.count, after.end);
      });
      await this.useIndex((handle) => writeFully(handle, entries, entryOffset(before.count)));
    } catch (error) {
      if (error instanceof FileChangedError) throw error;
      const cutBack = await this.cutBack(before);
      throw storageFailure(
        "append to",
        this.sessionId,
        error,
        cutBack ? "nothing stored" : "maybe stored",
      );
    }
    Object.assign(state, after, { updatedAtMs: Date.now() });
    const { stats, events } = this.context;
    stats.writes++;
    stats.messages += messages.length;
    stats.bytes += lines.length;
    events.wrote(secondsSince(started), messages.length, lines.length);
  }

  /** Takes back a failed write's bytes; resolves to whether that worked. */
  private async cutBack(to: { count: number; end: number }): Promise<boolean> {
    try {
      await this.useData(async (handle) => {
        await handle.truncate(to.end);
        await this.rewriteHeader(handle, to.count, to.end);
      });
      await this.useIndex((handle) => handle.truncate(entryOffset(to.count)));
      return true;
    } catch (error) {
      this.context.log.error(
        { sessionId: this.sessionId, err: error },
        "could not take back a failed write; the file is recounted when next opened",
      );
      return false;
    }
  }

  /**
   * How someone else changed the file since the server last wrote it (between writes only), or
   * undefined when nobody did.
   */
  async changedOutside(): Promise<FileChangedError | undefined> {
    // By name, needing no handle: this runs after most writes (the watch sees them all).
    const stat = await lstat(this.path).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    const what = !stat
      ? "was deleted"
      : stat.ino !== this.state.inode
        ? "was replaced"
        : stat.size > this.state.end
          ? "was appended to"
          : stat.size < this.state.end
            ? "was cut short"
            : undefined;
    return what === undefined ? undefined : new FileChangedError(this.sessionId, what);
  }

  /** Refuses to write to a file someone else changed since the server last wrote it. */
  private async checkUnchanged(handle: FileHandle): Promise<void> {
    const stat = await handle.stat();
    if (stat.nlink === 0) throw new FileChangedError(this.sessionId, "was deleted");
    if (stat.size !== this.state.end) {
      throw new FileChangedError(
        this.sessionId,
        stat.size > this.state.end ? "was appended to" : "was cut short",
      );
    }
  }

  /**
   * The error for a record that fails its check: a FileChangedError when the file as a whole is
   * not the one indexed (someone else rewrote it), else DATA_LOSS, after which reads and new
   * appends of the session are refused until an operator repairs it.
   */
  private async damaged(seq: number): Promise<SessionStoreError> {
    const changed = await this.useData(async (handle) => {
      const stat = await handle.stat();
      return stat.size !== this.state.end || stat.nlink === 0;
    }).catch((error: unknown) => error instanceof FileChangedError);
    if (changed) return new FileChangedError(this.sessionId, "was rewritten");
    this.state.corruptSeq = Math.min(seq, this.state.corruptSeq ?? seq);
    this.context.events.failed(Code.DataLoss);
    this.context.log.error(
      { sessionId: this.sessionId, seq, file: this.path },
      "a record of the session file is not what was written (checksum mismatch); serving it is refused until repaired",
    );
    return corruption(this.sessionId, this.state.corruptSeq);
  }

  private useData<T>(task: (handle: FileHandle) => Promise<T>): Promise<T> {
    return this.context.pool.use(this.path, task, {
      verify: async (handle) => {
        const stat = await handle.stat();
        if (stat.ino !== this.state.inode)
          throw new FileChangedError(this.sessionId, "was replaced");
      },
    });
  }

  /** Runs `task` with a handle on the session's index (created when missing). */
  useIndex<T>(task: (handle: FileHandle) => Promise<T>): Promise<T> {
    return this.context.pool.use(this.indexPath, task, { flags: OPEN_OR_CREATE });
  }

  /** Writes a new index with no entries (for a file with no records yet). */
  private async resetIndex(): Promise<void> {
    await this.useIndex(async (handle) => {
      await writeFully(handle, this.indexHeader(), 0);
      await handle.truncate(INDEX_HEADER_BYTES);
    });
  }

  private indexHeader(): Buffer {
    const { inode, dataStart, firstLine, durable } = this.state;
    return encodeHeader({ inode, dataStart, firstLine, durable });
  }

  /** Rewrites our header to say `count` records end at `end` (files in our layout only). */
  private async rewriteHeader(handle: FileHandle, count: number, end: number): Promise<void> {
    const { layout } = this.state;
    if (layout.kind !== "own") return;
    const header = ownHeader(this.sessionId, { ...this.state, count, end }, layout.headerWidth);
    await writeFully(handle, header, 0);
  }
}

/** Our padded header line for a file in our layout. */
function ownHeader(
  sessionId: string,
  state: Pick<FileState, "createdAtMs" | "agentLoopVersion" | "count" | "end">,
  headerWidth: number,
): Buffer {
  const header: SessionHeader = {
    sessionId,
    createdAtMs: state.createdAtMs,
    agentLoopVersion: state.agentLoopVersion,
    messageCount: state.count,
    fileBytes: state.end,
  };
  return renderHeader(header, headerWidth);
}

/** The DATA_LOSS error of a session whose record `seq` is damaged. */
export function corruption(sessionId: string, seq: number): SessionStoreError {
  return new SessionStoreError(
    Code.DataLoss,
    `session ${sessionId} has a corrupt record at seq ${seq}; ` +
      "an operator must repair its file (see the README, 'Repairing a session file')",
  );
}

function indexPath(context: FileContext, sessionId: string): string {
  return join(context.indexDirectory, `${sessionId}.idx`);
}

async function checkRegularFile(handle: FileHandle): Promise<void> {
  const stat = await handle.stat();
  if (!stat.isFile()) {
    throw Object.assign(new Error("not a regular file"), { code: "ENOTREG" });
  }
}

/** FAILED_PRECONDITION for an entry the server will not use; else the storage failure. */
function refusedOrFailed(sessionId: string, error: unknown): SessionStoreError {
  const code = (error as NodeJS.ErrnoException).code;
  const what =
    code === "ELOOP"
      ? "is a symbolic link, which the server does not follow"
      : code === "EISDIR" || code === "ENOTREG" || code === "ENXIO"
        ? "is not a regular file"
        : undefined;
  if (what === undefined) return storageFailure("open", sessionId, error);
  return new SessionStoreError(
    Code.FailedPrecondition,
    `the entry of session ${sessionId} in the data directory ${what}; ` +
      "an operator must replace it with a regular file",
  );
}

/** The text of a record: its line without a trailing CR. */
function recordText(line: Buffer): string {
  const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
  return line.toString("utf8", 0, end);
}

/** How many entries from `from` on make one page: at least one, at most PAGE_BYTES of records. */
function pageOf(entries: RecordEntry[], from: number): number {
  const first = entries[from] as RecordEntry;
  let count = 1;
  while (from + count < entries.length) {
    const entry = entries[from + count] as RecordEntry;
    if (entry.start + entry.lineLength - first.start > PAGE_BYTES) break;
    count++;
  }
  return count;
}

function ownFirstLine(
  sessionId: string,
  headerWidth: number,
  createdAtMs: number,
  agentLoopVersion: string,
): number {
  return crc32(`own ${headerWidth} ${createdAtMs} ${agentLoopVersion} ${sessionId}`);
}

/** What line 1 says about a file: its layout and where records start. */
interface FirstLine {
  layout: Layout;
  header?: SessionHeader;
  dataStart: number;
  /** Checksum of what identifies line 1 (see IndexedFile.firstLine). */
  identity: number;
}

async function readFirstLine(
  handle: FileHandle,
  sessionId: string,
  size: number,
): Promise<FirstLine> {
  const buffer = Buffer.alloc(Math.min(size, FIRST_LINE_BYTES));
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  const newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
  const none: FirstLine = { layout: { kind: "foreign" }, dataStart: 0, identity: 0 };
  if (newline === -1) return none;
  const line = buffer.subarray(0, newline);
  const header = parseHeader(line.toString("utf8"));
  if (!header) return none;
  const dataStart = newline + 1;
  if (isOwnLayout(header, sessionId, newline)) {
    return {
      layout: { kind: "own", headerWidth: newline },
      header,
      dataStart,
      identity: ownFirstLine(sessionId, newline, header.createdAtMs, header.agentLoopVersion),
    };
  }
  // motosan's header: any change to it (motosan rewrote the file) makes it another file.
  return { layout: { kind: "foreign" }, header, dataStart, identity: crc32(line) };
}

/** Whether a header is one this server wrote for this file (padded, with `file_bytes`). */
function isOwnLayout(header: SessionHeader, sessionId: string, width: number): boolean {
  return (
    header.sessionId === sessionId &&
    header.fileBytes !== undefined &&
    width >= headerWidthFor(header)
  );
}

/** The end of a session's index as read before its file is opened. */
interface IndexTail {
  header: IndexHeader;
  /** Entries in the index. */
  count: number;
  /** Its last entries (up to TAIL_ENTRIES), in order; the last is entry `count - 1`. */
  last: RecordEntry[];
}

/** Trailing entries read on open: more than a power loss can leave past the file's end. */
const TAIL_ENTRIES = 64;

/** Reads an index's header and last entries, or undefined when there is none (or no valid one). */
async function readIndexTail(
  context: FileContext,
  sessionId: string,
): Promise<IndexTail | undefined> {
  try {
    return await context.pool.use(indexPath(context, sessionId), async (handle) => {
      const size = (await handle.stat()).size;
      const headerBytes = Buffer.alloc(INDEX_HEADER_BYTES);
      await handle.read(headerBytes, 0, INDEX_HEADER_BYTES, 0);
      const header = decodeHeader(headerBytes);
      if (!header) return undefined;
      // A partial entry at the end (a torn write of the index) is not counted.
      const count = Math.max(0, Math.floor((size - INDEX_HEADER_BYTES) / INDEX_ENTRY_BYTES));
      const tail = Math.min(count, TAIL_ENTRIES);
      return { header, count, last: await readEntries(handle, count - tail, tail) };
    });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** How the index must change once the file was checked against it. */
interface IndexUpdate {
  /** A new header (the index is rebuilt, or its durable count changed). */
  header?: IndexHeader;
  /** Entries to keep. */
  keep: number;
  /** Entries to add after them. */
  append: Buffer;
}

interface Recovered {
  state: FileState;
  index: IndexUpdate;
}

async function applyIndexUpdate(handle: FileHandle, update: IndexUpdate): Promise<void> {
  if (update.header) await writeFully(handle, encodeHeader(update.header), 0);
  await writeFully(handle, update.append, entryOffset(update.keep));
  await handle.truncate(entryOffset(update.keep) + update.append.length);
}

/**
 * Works out a file's records from its index, checking the index against the file, and repairs
 * what a crash can leave (see SessionFile.open).
 */
async function recover(
  context: FileContext,
  sessionId: string,
  handle: FileHandle,
  index: IndexTail | undefined,
): Promise<Recovered> {
  const stat = await handle.stat();
  const first = await readFirstLine(handle, sessionId, stat.size);
  const identity: IndexedFile = {
    inode: stat.ino,
    dataStart: first.dataStart,
    firstLine: first.identity,
  };
  const state: FileState = {
    layout: first.layout,
    inode: stat.ino,
    dataStart: first.dataStart,
    firstLine: first.identity,
    createdAtMs: first.header?.createdAtMs ?? Math.round(stat.birthtimeMs || stat.mtimeMs),
    agentLoopVersion: first.header?.agentLoopVersion ?? AGENT_LOOP_VERSION,
    count: 0,
    end: first.dataStart,
    unterminated: false,
    durable: 0,
    entrySynced: true,
    updatedAtMs: stat.mtimeMs,
  };
  const known =
    index && sameFile(index.header, identity)
      ? await checkIndex(index, identity, stat, handle)
      : undefined;
  const update: IndexUpdate = { keep: known?.count ?? 0, append: Buffer.alloc(0) };
  if (!known) {
    update.header = { ...identity, durable: 0 };
    if (index) {
      context.log.info(
        { sessionId },
        "the session file is not the one its index describes; indexing it anew",
      );
    }
  } else {
    const { problem, ...records } = known;
    Object.assign(state, records);
    if (records.corruptSeq !== undefined) {
      logCorruption(context, sessionId, records.corruptSeq, problem);
      return { state, index: update };
    }
  }
  update.append = await indexTail(context, sessionId, handle, state, stat.size);
  // What an earlier run or someone else wrote since the start-up sync is made durable now, so
  // that durable_count is never an overstatement.
  if (stat.ctimeMs >= context.syncedBeforeMs || stat.size !== state.end) await handle.datasync();
  state.durable = state.count;
  if (state.corruptSeq === undefined) update.header = { ...identity, durable: state.durable };
  const { layout } = state;
  if (
    layout.kind === "own" &&
    state.corruptSeq === undefined &&
    (first.header?.messageCount !== state.count || first.header?.fileBytes !== state.end)
  ) {
    await writeFully(handle, ownHeader(sessionId, state, layout.headerWidth), 0);
  }
  return { state, index: update };
}

interface KnownRecords {
  count: number;
  end: number;
  unterminated: boolean;
  corruptSeq?: number;
  problem?: string;
}

/**
 * What an index of this file says, once checked against the file, or undefined when it cannot
 * be used (it is then rebuilt by a full scan). Entries past the end of the file are records a
 * power loss took before they were durable: dropped. Durable records missing, or a last record
 * that fails its checksum, mark the session corrupt.
 */
async function checkIndex(
  index: IndexTail,
  identity: IndexedFile,
  stat: Stats,
  handle: FileHandle,
): Promise<KnownRecords | undefined> {
  let count = index.count;
  let last: RecordEntry | undefined;
  for (let i = index.last.length - 1; i >= 0; i--) {
    const entry = index.last[i] as RecordEntry;
    if (entry.start + entry.lineLength <= stat.size) {
      last = entry;
      break;
    }
    count--;
  }
  if (!last && count > 0) return undefined; // more entries past the end than a crash leaves
  if (index.header.durable > count) {
    return {
      count,
      end: last ? last.start + last.lineLength + 1 : identity.dataStart,
      unterminated: false,
      corruptSeq: count,
      problem: `records up to seq ${index.header.durable - 1} were durable but the file ends before them`,
    };
  }
  if (!last) return { count: 0, end: identity.dataStart, unterminated: false };
  const lineEnd = last.start + last.lineLength;
  const bytes = Buffer.alloc(last.lineLength + (lineEnd < stat.size ? 1 : 0));
  await handle.read(bytes, 0, bytes.length, last.start);
  const line = bytes.subarray(0, last.lineLength);
  if (recordChecksum(line) !== last.crc || (lineEnd < stat.size && bytes[line.length] !== 0x0a)) {
    return {
      count,
      end: Math.min(lineEnd + 1, stat.size),
      unterminated: false,
      corruptSeq: count - 1,
      problem: "its last indexed record is not what was written",
    };
  }
  return lineEnd === stat.size
    ? { count, end: lineEnd, unterminated: true }
    : { count, end: lineEnd + 1, unterminated: false };
}

/**
 * Validates the records after the indexed ones (all of them for a new index) and returns their
 * index entries; cuts off a torn last record, and marks the session corrupt at a bad record with
 * valid ones after.
 */
async function indexTail(
  context: FileContext,
  sessionId: string,
  handle: FileHandle,
  state: FileState,
  size: number,
): Promise<Buffer> {
  if (state.unterminated || state.end >= size) return Buffer.alloc(0);
  const entries: Buffer[] = [];
  const scan = await scanRecords(handle, state.end, size, async (batch) => {
    entries.push(Buffer.from(batch));
  });
  const base = state.count;
  state.count += scan.count;
  if (scan.corrupt) {
    state.corruptSeq = base + scan.corrupt.seq;
    state.end = size;
    logCorruption(context, sessionId, state.corruptSeq, "it is not one JSON object");
    return Buffer.concat(entries);
  }
  state.end = scan.end;
  state.unterminated = scan.unterminated;
  if (scan.end < size) {
    context.log.warn(
      { sessionId, bytes: size - scan.end, seq: state.count },
      "cut off a torn record at the end of the session file",
    );
    await handle.truncate(scan.end);
  }
  if (scan.count > 0) {
    context.log.info(
      { sessionId, records: scan.count, from: base },
      "validated and indexed records of the session file",
    );
  }
  return Buffer.concat(entries);
}

function logCorruption(
  context: FileContext,
  sessionId: string,
  seq: number,
  problem: string | undefined,
): void {
  context.events.failed(Code.DataLoss);
  context.log.error(
    { sessionId, seq, file: sessionPath(context.directory, sessionId), problem },
    "session file has a damaged record; serving it is refused until repaired",
  );
}
