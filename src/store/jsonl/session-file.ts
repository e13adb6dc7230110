import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { type FileHandle, link, lstat, mkdir, open, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "pino";
import { Code, SessionStoreError, sessionExists } from "../../errors.js";
import { AGENT_LOOP_VERSION } from "../storage.js";
import { type StorageEvents, secondsSince } from "../storage-events.js";
import { AppendTimes } from "./append-times.js";
import { isNotFound, storageFailure, syncDirectory, writeFully } from "./file-io.js";
import { CREATE_NEW, type HandlePool, OPEN_OR_CREATE } from "./handle-pool.js";
import {
  headerWidthFor,
  ownBase,
  type Piece,
  parseHeader,
  renderHeader,
  type SessionHeader,
} from "./header.js";
import { type JournalMember, JournalWriteError, type SessionJournal } from "./journal.js";
import { joinLines } from "./lines.js";
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

/** Bytes of a session file, where they lie in it. */
interface JournalBytes {
  start: number;
  bytes: Buffer;
}

/** What a session file needs from its storage. */
export interface FileContext {
  /** The data directory, as the server resolved it at start. */
  directory: string;
  /** Where the sidecar indexes live (inside the data directory). */
  indexDirectory: string;
  /** Where each fork keeps the files it shares with its source: `<forks>/<session_id>/`. */
  forksDirectory: string;
  /** Where new files are written before they are renamed into place (same file system). */
  tmpDirectory: string;
  pool: HandlePool;
  log: Logger;
  /** Makes the data directory's entries durable; concurrent calls share one fsync. */
  syncDirectory(): Promise<void>;
  /** Files not changed since this time (ms) were made durable by the start-up sync. */
  syncedBeforeMs: number;
  /** Counters of the work done, logged when the storage closes (and read by the benchmarks). */
  stats: WriteStats;
  events: StorageEvents;
  /**
   * Where durable appends go instead of an fdatasync of each session file; without it every
   * sync fsyncs the file itself.
   */
  journal?: SessionJournal | undefined;
}

export interface WriteStats {
  /** Appends that wrote lines. */
  writes: number;
  messages: number;
  bytes: number;
  /** fdatasync calls on session files. */
  fileSyncs: number;
}

/**
 * How far a file's modification time may lag the clock (file systems stamp with a coarse clock):
 * added to it when it stands for the time its records were written.
 */
const FILE_TIME_LAG_MS = 1000;

/** Bytes of records per page read for Load and Watch. */
const PAGE_BYTES = 256 << 10;
/** Index entries read at once when serving a range. */
const ENTRIES_PER_READ = 4096;
/** Line 1 is read up to this many bytes to recognise a header (most are far shorter)... */
const FIRST_LINE_BYTES = 4096;
/** ...and, when it starts like one of our headers, up to this many (a fork's lists its pieces). */
const OWN_HEADER_BYTES = 1 << 20;

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
  /** Seq (in the session) of the first record known to be damaged. */
  corruptSeq?: number;
  /** The session's first kept seq. */
  firstSeq: number;
  /** The seq of the file's record 0: its pieces hold the seqs before it. */
  base: number;
  pieces: Piece[];
  parent: SessionHeader["parent"];
  times: AppendTimes;
  /** Grows whenever the file is replaced by a rewritten one (trim, rewind). */
  generation: number;
  /** Grows whenever a rewrite drops messages at the end (rewind). */
  rewinds: number;
  /** Set while the server itself renames a new file into place. */
  replacing: boolean;
}

/** A file to hard-link into a fork's pieces directory: its messages [from, to). */
export interface PieceSource {
  data: string;
  index: string;
  /** Its record 0's seq. */
  base: number;
  from: number;
  to: number;
  /**
   * For the source's own file: the inode `data` must have (the file the server knows). Its index
   * is then made durable when linked; a source's pieces were made durable when it linked them.
   */
  inode?: number;
}

/** What a new fork's file says of where its messages come from. */
export interface ForkOrigin {
  parent: { sessionId: string; seq: number };
  firstSeq: number;
  pieces: PieceSource[];
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
export class SessionFile implements JournalMember {
  /** Bytes written since the records became durable: what the next sync journals. */
  private unsynced: { start: number; chunks: Buffer[] } | undefined;
  /**
   * Records journaled ahead of the file (`journalAhead`): durable, not yet written. The next
   * write writes exactly these bytes first, where the journal says they go.
   */
  private ahead: { chunks: Buffer[]; count: number; bytes: number } | undefined;
  /** The newest journal segment holding bytes of this file that were not fsynced in it. */
  private journaledIn: number | undefined;
  /** Whether the journal made bytes durable that the file itself has not fsynced. */
  private fileSyncOwed = false;

  private constructor(
    private readonly context: FileContext,
    readonly sessionId: string,
    private readonly state: FileState,
  ) {}

  /** The session's length as stored: the seq after the file's last record. */
  get length(): number {
    return this.state.base + this.state.count;
  }

  /** Messages [0, durableCount) are on disk. */
  get durableCount(): number {
    return this.state.base + this.state.durable;
  }

  /** The session's first kept seq. */
  get firstSeq(): number {
    return this.state.firstSeq;
  }

  /** The session it was forked from, and at which seq. */
  get parent(): SessionHeader["parent"] {
    return this.state.parent;
  }

  /** Whether the server is renaming a rewritten file into place (its own change). */
  get replacing(): boolean {
    return this.state.replacing;
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

  private get timesPath(): string {
    return timesPath(this.context, this.sessionId);
  }

  /**
   * Creates the session's file with our header (its first seq `firstSeq`: a copy of a trimmed
   * session keeps its seqs) and no records. When a file by that name exists
   * (it appeared since the caller looked), it is opened instead: never replaced.
   */
  static async create(
    context: FileContext,
    sessionId: string,
    createdAtMs: number,
    firstSeq = 0,
  ): Promise<SessionFile> {
    const path = sessionPath(context.directory, sessionId);
    const header = newHeader(sessionId, createdAtMs, firstSeq);
    const headerWidth = headerWidthFor(header);
    let inode: number;
    try {
      inode = await context.pool.use(
        path,
        async (handle) => {
          await writeFully(handle, renderHeader(headerAtEnd(header, headerWidth), headerWidth), 0);
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
    const file = new SessionFile(
      context,
      sessionId,
      emptyState(header, headerWidth, inode, AppendTimes.upTo(0, createdAtMs, 0)),
    );
    await file.resetIndex();
    return file;
  }

  /**
   * Creates a fork's file, durably (it is opened as any session's file): `origin.pieces` (files of its source, whose messages below
   * the fork point are durable) are hard-linked into the fork's pieces directory, not copied, and
   * its own file holds a header naming them and no messages yet. ALREADY_EXISTS when a file by
   * that name appears meanwhile (it is never replaced). Its cost does not grow with the pieces'
   * lengths: links, fsyncs and a header.
   */
  static async createFork(
    context: FileContext,
    sessionId: string,
    origin: ForkOrigin,
    createdAtMs: number,
  ): Promise<void> {
    const piecesDirectory = join(context.forksDirectory, sessionId);
    // What a fork to this id that crashed midway left (no session file names it).
    await rm(piecesDirectory, { recursive: true, force: true });
    await mkdir(piecesDirectory);
    let placed = false;
    try {
      const pieces: Piece[] = [];
      for (const [index, source] of origin.pieces.entries()) {
        pieces.push(await linkPiece(piecesDirectory, String(index), source, origin.parent));
      }
      await syncDirectory(piecesDirectory);
      await syncDirectory(context.forksDirectory);
      const header: SessionHeader = {
        ...newHeader(sessionId, createdAtMs, origin.firstSeq),
        parent: origin.parent,
        pieces,
      };
      const width = headerWidthFor(header);
      const times = AppendTimes.upTo(origin.parent.seq, createdAtMs, origin.firstSeq);
      const staged = await stageFiles(context, sessionId, {
        header: renderHeader(headerAtEnd(header, width), width),
        firstLine: ownFirstLine(sessionId, width, createdAtMs, AGENT_LOOP_VERSION),
        records: 0,
        times,
      });
      try {
        // A link, unlike a rename, never replaces a file that took the name meanwhile.
        await link(staged.data, sessionPath(context.directory, sessionId)).catch((error) => {
          if ((error as NodeJS.ErrnoException).code === "EEXIST") throw sessionExists(sessionId);
          throw error;
        });
        placed = true;
        // Derived data: one that is missing is rebuilt when the file is opened.
        await rename(staged.index, indexPath(context, sessionId)).catch(() => undefined);
        await rename(staged.times, timesPath(context, sessionId)).catch(() => undefined);
        await context.syncDirectory();
      } finally {
        await removeStaged(staged);
      }
    } catch (error) {
      if (!placed) await rm(piecesDirectory, { recursive: true, force: true });
      throw error instanceof SessionStoreError ? error : storageFailure("fork", sessionId, error);
    }
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
    const { state } = recovered;
    const file = new SessionFile(context, sessionId, state);
    try {
      if (recovered.index.keep === 0) {
        // Rebuilt as a new file: a fork may link the old one, which must stay as it is.
        context.pool.discard(file.indexPath);
        await unlink(file.indexPath).catch(() => undefined);
      }
      await file.useIndex((handle) => applyIndexUpdate(handle, recovered.index));
      const stored = await file.useTimes(readWhole);
      const writtenBy = state.updatedAtMs + FILE_TIME_LAG_MS;
      state.times = AppendTimes.decode(stored, state.firstSeq, file.length, writtenBy);
      const times = state.times.encode();
      if (!times.equals(stored)) {
        await file.useTimes(async (handle) => {
          await writeFully(handle, times, 0);
          await handle.truncate(times.length);
        });
      }
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
  async append(messages: readonly Buffer[], sync: boolean): Promise<void> {
    if (messages.length > 0) await this.writeRecords(messages);
    if (sync) await this.sync();
  }

  /**
   * Makes every record durable (and a new file's directory entry): through the journal when
   * there is one and the file's entry is durable, else by fsyncing the file.
   */
  async sync(): Promise<void> {
    const { state } = this;
    if (state.durable === state.count && state.entrySynced) return;
    if (this.context.journal && state.entrySynced && this.unsynced) {
      await this.commitToJournal(this.takeUnsynced());
      return;
    }
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
    if (state.durable === state.count) this.unsynced = undefined;
    // A hint for the next open (the index itself is never fsynced).
    await this.useIndex((handle) => writeFully(handle, this.indexHeader(), 0)).catch(() => {});
  }

  /**
   * For a checkpoint, which is about to delete the journal segments made before it: makes the
   * records the journal made durable durable in the file itself, and journals again, in the
   * new segment, those journaled ahead of the file (they are not in the file yet).
   */
  async checkpoint(): Promise<void> {
    const ahead = this.ahead;
    if (ahead) {
      const bytes = Buffer.concat(ahead.chunks);
      await this.commitToJournal([{ start: this.state.end, bytes }]);
    }
    if (!this.fileSyncOwed) return;
    this.fileSyncOwed = false;
    try {
      await this.useData((handle) => handle.datasync());
      this.context.stats.fileSyncs++;
    } catch (error) {
      // Not the server's file any more: the journal was told to forget it (abandonJournal).
      if (error instanceof FileChangedError || isNotFound(error)) return;
      this.fileSyncOwed = true;
      throw error;
    }
  }

  /**
   * Tells the journal to forget this file without fsyncing it: the file changed outside the
   * server, so what the journal holds for it must not be replayed into whatever is there now.
   */
  abandonJournal(): void {
    const { journal } = this.context;
    if (!journal || this.journaledIn === undefined || !journal.holds(this.journaledIn)) return;
    this.journaledIn = undefined;
    journal.forget(this.name, this.state.inode).catch((error: unknown) => {
      this.context.log.warn(
        { sessionId: this.sessionId, err: error },
        "could not journal that a session file changed outside the server",
      );
    });
  }

  /**
   * Cuts the file back to the session length `length` (dropping records this server appended
   * and whose requests failed), durably.
   */
  async truncate(length: number): Promise<void> {
    const { state } = this;
    const count = length - state.base;
    if (count >= state.count) return;
    await this.leaveJournal();
    this.ahead = undefined;
    const [first] = await this.useIndex((handle) => readEntries(handle, count, 1));
    const end = (first as RecordEntry).start;
    await this.useData(async (handle) => {
      await handle.truncate(end);
      await this.rewriteHeader(handle, count, end);
      await handle.datasync();
    });
    await this.useIndex((handle) => handle.truncate(entryOffset(count)));
    const timesBytes = state.times.cut(length);
    await this.useTimes((handle) => handle.truncate(timesBytes)).catch(() => undefined);
    Object.assign(state, { count, end, unterminated: false });
    // The fdatasync made every record left durable.
    state.durable = state.entrySynced ? count : Math.min(state.durable, count);
    this.unsynced = undefined;
  }

  /**
   * Reads messages [from, from + count) in pages, from the fork's pieces and then the file's own
   * records, checking each against its index entry: a record that is not what was appended is
   * DATA_LOSS naming its seq (or, if the whole file changed under the server, a
   * FileChangedError). A trim that happens meanwhile is read through (seqs do not change); a
   * rewind, or a trim past what is still to read, ends the read with ABORTED.
   */
  async *read(from: number, count: number): AsyncGenerator<Buffer[]> {
    const to = from + count;
    const { rewinds } = this.state;
    for (let seq = from; seq < to; ) {
      if (this.state.rewinds !== rewinds || seq < this.state.firstSeq) {
        throw rewoundWhileRead(this.sessionId);
      }
      const messages = await this.readPage(seq, to);
      if (!messages) continue; // the file was rewritten under the page: read it again
      yield messages;
      seq += messages.length;
    }
  }

  /** The pieces and own file a fork made now at `atSeq` must link, in seq order. */
  piecesBelow(atSeq: number): PieceSource[] {
    const { state } = this;
    const sources: PieceSource[] = clipPieces(state.pieces, state.firstSeq, atSeq).map((piece) => ({
      ...piecePaths(this.context, this.sessionId, piece),
      base: piece.base,
      from: piece.from,
      to: piece.to,
    }));
    if (atSeq > state.base) {
      sources.push({
        data: this.path,
        index: this.indexPath,
        base: state.base,
        from: Math.max(state.base, state.firstSeq),
        to: atSeq,
        inode: state.inode,
      });
    }
    return sources;
  }

  /**
   * Replaces the file, atomically, by one holding only the session's messages [from, to) at the
   * same seqs: a new file (and index) is written and fsynced beside it and renamed over it, and
   * the directory is fsynced, so a crash leaves the old file or the new one. Never truncates in
   * place: forks that linked the old file keep it whole. Pieces no longer needed are unlinked.
   * Refuses (FileChangedError) a file someone else changed since the server last wrote it.
   */
  async replace(from: number, to: number): Promise<void> {
    const { state, sessionId } = this;
    await this.leaveJournal();
    const length = this.length;
    const base = Math.min(Math.max(state.base, from), to);
    const pieces = clipPieces(state.pieces, from, base);
    const kept = Math.max(0, to - base);
    const header: SessionHeader = {
      ...newHeader(sessionId, state.createdAtMs, from),
      agentLoopVersion: state.agentLoopVersion,
      messageCount: kept,
      ...(state.parent ? { parent: state.parent, pieces } : {}),
    };
    const width = headerWidthFor(header);
    const dataStart = width + 1;
    const firstKept = base - state.base;
    const [first, last] =
      kept > 0
        ? await this.useIndex(async (handle) => [
            ...(await readEntries(handle, firstKept, 1)),
            ...(await readEntries(handle, firstKept + kept - 1, 1)),
          ])
        : [];
    const copyStart = first?.start ?? 0;
    const copyEnd = last ? last.start + last.lineLength : copyStart;
    const end = dataStart + (last ? copyEnd - copyStart + 1 : 0);
    const times = state.times.clone();
    times.cut(to);
    times.dropBefore(from);
    const firstLine = ownFirstLine(sessionId, width, state.createdAtMs, state.agentLoopVersion);
    const staged = await this.useData(async (handle) => {
      await this.checkUnchanged(handle);
      return stageFiles(this.context, sessionId, {
        header: renderHeader({ ...header, fileBytes: end }, width),
        ...(last
          ? {
              copy: { from: handle, start: copyStart, end: copyEnd },
              entries: { index: this.indexPath, first: firstKept, count: kept },
            }
          : {}),
        firstLine,
        records: kept,
        times,
        // Dropping messages is not an append: the session keeps its update time.
        ...(to === length ? { mtimeMs: state.updatedAtMs } : {}),
      });
    });
    state.replacing = true;
    try {
      await this.useData((handle) => this.checkUnchanged(handle));
      await rename(staged.data, this.path);
    } catch (error) {
      state.replacing = false;
      await removeStaged(staged);
      throw error;
    }
    this.unsynced = undefined;
    this.ahead = undefined;
    const dropped = state.pieces.filter((piece) => !pieces.some((p) => p.name === piece.name));
    this.forgetHandles();
    Object.assign(state, {
      layout: { kind: "own", headerWidth: width },
      inode: staged.inode,
      dataStart,
      firstLine,
      count: kept,
      end,
      unterminated: false,
      durable: kept,
      entrySynced: true,
      firstSeq: from,
      base,
      pieces,
      times,
      generation: state.generation + 1,
      rewinds: state.rewinds + (to < length ? 1 : 0),
      replacing: false,
      // A damaged record that was dropped is gone with its file.
      corruptSeq:
        state.corruptSeq !== undefined && state.corruptSeq >= from ? state.corruptSeq : undefined,
    });
    // Derived data: one that could not be moved into place is rebuilt when the file is opened.
    await rename(staged.index, this.indexPath).catch(() => undefined);
    await rename(staged.times, this.timesPath).catch(() => undefined);
    await removeStaged(staged);
    try {
      await this.context.syncDirectory();
    } catch (error) {
      // The next sync makes it durable; until then nothing of the file is counted durable.
      Object.assign(state, { durable: 0, entrySynced: false });
      this.context.log.warn({ sessionId, err: error }, "could not fsync a rewritten session file");
    }
    for (const piece of dropped) {
      const paths = piecePaths(this.context, sessionId, piece);
      await unlink(paths.data).catch(() => undefined);
      await unlink(paths.index).catch(() => undefined);
    }
  }

  /** The first seq written at or after `timeMs` (see AppendTimes.firstSince). */
  firstSeqSince(timeMs: number): number {
    return this.state.times.firstSince(timeMs, this.state.firstSeq);
  }

  /** Deletes the file and its sidecars (a fork's pieces among them). The caller syncs the directory. */
  async remove(): Promise<boolean> {
    // What was journaled ahead goes with the file (the session is deleted).
    this.ahead = undefined;
    await this.leaveJournal();
    this.forgetHandles();
    let existed = true;
    try {
      await unlink(this.path);
    } catch (error) {
      if (!isNotFound(error)) throw storageFailure("delete", this.sessionId, error);
      existed = false;
    }
    await removeSidecars(this.context, this.sessionId);
    return existed;
  }

  /** Closes the handles the pool keeps on the file, its sidecars and pieces (they changed). */
  forgetHandles(): void {
    const { pool } = this.context;
    for (const path of [this.path, this.indexPath, this.timesPath]) pool.discard(path);
    for (const piece of this.state.pieces) {
      const paths = piecePaths(this.context, this.sessionId, piece);
      pool.discard(paths.data);
      pool.discard(paths.index);
    }
  }

  /**
   * One page of the messages from `seq` (below `to`), from the piece or own file that holds
   * `seq`; undefined when the file was rewritten while the page was read (it is read again).
   */
  private async readPage(seq: number, to: number): Promise<Buffer[] | undefined> {
    const { state } = this;
    const { generation } = state;
    const piece = seq < state.base ? state.pieces.find((p) => seq < p.to) : undefined;
    const paths = piece && piecePaths(this.context, this.sessionId, piece);
    const base = piece ? piece.base : state.base;
    const end = piece ? Math.min(to, piece.to) : to;
    const useIndex = <T>(task: (handle: FileHandle) => Promise<T>) =>
      paths ? this.context.pool.use(paths.index, task) : this.useIndex(task);
    const useData = <T>(task: (handle: FileHandle) => Promise<T>) =>
      paths ? this.context.pool.use(paths.data, task) : this.useData(task);
    let entries: RecordEntry[];
    let data: Buffer;
    let bytesRead: number;
    try {
      const wanted = Math.min(end - seq, ENTRIES_PER_READ);
      entries = await useIndex((handle) => readEntries(handle, seq - base, wanted));
      entries.length = pageOf(entries, 0);
      const firstEntry = entries[0] as RecordEntry;
      const lastEntry = entries.at(-1) as RecordEntry;
      data = Buffer.allocUnsafe(lastEntry.start + lastEntry.lineLength - firstEntry.start);
      const buffer = data;
      ({ bytesRead } = await useData((handle) =>
        handle.read(buffer, 0, buffer.length, firstEntry.start),
      ));
    } catch (error) {
      if (state.generation !== generation) return undefined;
      if (piece && !(error instanceof SessionStoreError)) throw this.pieceDamaged(seq, error);
      throw error;
    }
    if (state.generation !== generation) return undefined;
    const firstStart = (entries[0] as RecordEntry).start;
    const messages: Buffer[] = [];
    for (const [i, entry] of entries.entries()) {
      const offset = entry.start - firstStart;
      const line = data.subarray(offset, offset + entry.lineLength);
      if (offset + entry.lineLength > bytesRead || recordChecksum(line) !== entry.crc) {
        throw piece ? this.pieceDamaged(seq + i) : await this.damaged(seq + i);
      }
      messages.push(recordBytes(line));
    }
    return messages;
  }

  /** DATA_LOSS for a fork's shared record that is missing or not what was appended. */
  private pieceDamaged(seq: number, cause?: unknown): SessionStoreError {
    this.state.corruptSeq = Math.min(seq, this.state.corruptSeq ?? seq);
    logCorruption(
      this.context,
      this.sessionId,
      seq,
      cause === undefined
        ? "a record it shares with the session it was forked from is not what was written"
        : `the file it shares with the session it was forked from cannot be read (${String(cause)})`,
    );
    return corruption(this.sessionId, this.state.corruptSeq);
  }

  private async writeRecords(messages: readonly Buffer[]): Promise<void> {
    const { state } = this;
    const before = { count: state.count, end: state.end, unterminated: state.unterminated };
    // A last record someone else left without a newline gets one, so records never merge.
    const prefix = state.unterminated ? 1 : 0;
    const lines = joinLines(messages, state.unterminated);
    this.checkAhead(messages.length, lines);
    const start = before.end + prefix;
    const entries = entriesFor(lines.subarray(prefix), start);
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
    const now = Date.now();
    Object.assign(state, after, { updatedAtMs: now });
    if (this.context.journal) {
      // What was journaled ahead is durable; the rest waits for the next sync.
      const journaled = this.ahead;
      this.ahead = undefined;
      if (journaled) state.durable = before.count + journaled.count;
      const rest = lines.subarray(journaled?.bytes ?? 0);
      if (rest.length > 0) {
        this.unsynced ??= { start: before.end + (journaled?.bytes ?? 0), chunks: [] };
        this.unsynced.chunks.push(rest);
      }
    }
    // Best effort: times a crash or a failure loses are covered by the file's modification time.
    const time = state.times.note(state.base + after.count, now);
    await this.useTimes((handle) => writeFully(handle, time.entry, time.offset)).catch(() => {});
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

  /** The file's name in its directory, as the journal knows it. */
  private get name(): string {
    return `${this.sessionId}.jsonl`;
  }

  /** The bytes written since the records were last durable, now no longer tracked as such. */
  private takeUnsynced(): JournalBytes[] {
    const unsynced = this.unsynced;
    this.unsynced = undefined;
    if (!unsynced) return [];
    const { chunks, start } = unsynced;
    return [{ start, bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) }];
  }

  /**
   * Journals `pieces` of the file's bytes (each where it lies in the file): one fsync of the
   * journal, shared with every session syncing meanwhile, instead of one of this file. Once it
   * returns, every record written so far is durable.
   */
  private async commitToJournal(pieces: readonly JournalBytes[]): Promise<void> {
    const { state } = this;
    const journal = this.context.journal as SessionJournal;
    const count = state.count;
    const started = performance.now();
    try {
      const segments = await Promise.all(
        pieces.map(({ start, bytes }) =>
          journal.commit(this, this.name, state.inode, start, bytes),
        ),
      );
      this.journaledIn = Math.max(this.journaledIn ?? 0, ...segments);
    } catch (error) {
      const takenBack = error instanceof JournalWriteError && error.takenBack;
      throw storageFailure(
        "sync",
        this.sessionId,
        error,
        takenBack ? "nothing stored" : "maybe stored",
      );
    }
    this.fileSyncOwed = true;
    this.context.events.synced(secondsSince(started));
    state.durable = Math.max(state.durable, count);
  }

  /** How many records are journaled ahead of the file (durable, not yet written). */
  get aheadCount(): number {
    return this.ahead?.count ?? 0;
  }

  /** Whether `journalAhead` can be used: there is a journal, and the file's entry is durable. */
  get canJournalAhead(): boolean {
    const { state } = this;
    return (
      this.context.journal !== undefined && state.entrySynced && state.corruptSeq === undefined
    );
  }

  /**
   * Makes `messages`, the records to follow those journaled ahead so far, durable through the
   * journal without writing them to the file yet: a durable append then costs its share of one
   * journal fsync, and the file gets many such appends in one write later. Records written but
   * not yet durable are journaled with them (a replay must not meet a gap before them). The
   * next `append` must start with exactly these messages, unless `dropAhead` is called first.
   */
  async journalAhead(messages: readonly Buffer[]): Promise<void> {
    const { state } = this;
    // What someone else appended since is found before an acknowledgement, not at the write.
    await this.useData((handle) => this.checkUnchanged(handle));
    if (messages.length === 0) {
      await this.commitToJournal(this.takeUnsynced());
      return;
    }
    this.ahead ??= { chunks: [], count: 0, bytes: 0 };
    const ahead = this.ahead;
    const lines = joinLines(messages, ahead.bytes === 0 && state.unterminated);
    const start = state.end + ahead.bytes;
    // Counted at once: a rollback while the journal writes must know these may be journaled.
    ahead.chunks.push(lines);
    ahead.count += messages.length;
    ahead.bytes += lines.length;
    const unsynced = this.unsynced;
    try {
      await this.commitToJournal([...this.takeUnsynced(), { start, bytes: lines }]);
    } catch (error) {
      const cause = (error as SessionStoreError).cause;
      if (cause instanceof JournalWriteError && cause.takenBack) {
        // The journal took the commit back: these records are not ahead of the file after all.
        ahead.chunks.pop();
        ahead.count -= messages.length;
        ahead.bytes -= lines.length;
        if (ahead.count === 0) this.ahead = undefined;
        this.unsynced = unsynced;
      }
      throw error;
    }
  }

  /**
   * Gives up what was journaled ahead (some of it was taken back): writes `kept`, the messages
   * of it that stay, fsyncs the file and tells the journal to forget it, so that a replay never
   * writes the messages taken back. The file is then durable on its own.
   */
  async dropAhead(kept: readonly Buffer[]): Promise<void> {
    this.ahead = undefined;
    if (kept.length > 0) await this.writeRecords(kept);
    this.unsynced = undefined;
    await this.leaveJournal(true);
    this.state.durable = this.state.count;
  }

  /**
   * Refuses a write that does not begin with what was journaled ahead: the journal says those
   * bytes lie where the write starts.
   */
  private checkAhead(count: number, lines: Buffer): void {
    const ahead = this.ahead;
    if (!ahead) return;
    let at = 0;
    let same = count >= ahead.count && lines.length >= ahead.bytes;
    for (const chunk of ahead.chunks) {
      if (!same) break;
      same = lines.compare(chunk, 0, chunk.length, at, at + chunk.length) === 0;
      at += chunk.length;
    }
    if (!same) throw new Error("a write does not begin with the records journaled ahead of it");
  }

  /**
   * Before the file is cut, replaced or deleted: makes what the journal holds for it durable in
   * the file itself, then durably tells the journal to forget it, so that a replay after a crash
   * never writes those bytes back into the changed file.
   */
  private async leaveJournal(always = false): Promise<void> {
    const { journal } = this.context;
    if (!journal) return;
    if (!always && (this.journaledIn === undefined || !journal.holds(this.journaledIn))) return;
    try {
      this.fileSyncOwed = true;
      await this.checkpoint();
      await journal.forget(this.name, this.state.inode);
    } catch (error) {
      throw storageFailure("sync", this.sessionId, error);
    }
    this.journaledIn = undefined;
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

  private useTimes<T>(task: (handle: FileHandle) => Promise<T>): Promise<T> {
    return this.context.pool.use(this.timesPath, task, { flags: OPEN_OR_CREATE });
  }

  /**
   * Writes a new index with no entries (for a file with no records yet), and no append times.
   * Both are new files: a fork may link the old index, which must stay as it is.
   */
  private async resetIndex(): Promise<void> {
    await removeSidecars(this.context, this.sessionId);
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
  state: Pick<
    FileState,
    "createdAtMs" | "agentLoopVersion" | "count" | "end" | "firstSeq" | "parent" | "pieces"
  >,
  headerWidth: number,
): Buffer {
  const header: SessionHeader = {
    sessionId,
    createdAtMs: state.createdAtMs,
    agentLoopVersion: state.agentLoopVersion,
    messageCount: state.count,
    fileBytes: state.end,
    firstSeq: state.firstSeq,
    ...(state.parent ? { parent: state.parent, pieces: state.pieces } : {}),
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

/** The message a record holds: its line without a trailing CR (a view, not a copy). */
function recordBytes(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
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
  let buffer = Buffer.alloc(Math.min(size, FIRST_LINE_BYTES));
  let { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  let newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
  if (newline === -1 && bytesRead === FIRST_LINE_BYTES && buffer.includes('"pieces":[')) {
    buffer = Buffer.alloc(Math.min(size, OWN_HEADER_BYTES));
    ({ bytesRead } = await handle.read(buffer, 0, buffer.length, 0));
    newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
  }
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
  // Only our own headers place the file's lines in the session (trimmed, or a fork's).
  const placing = first.layout.kind === "own" ? first.header : undefined;
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
    firstSeq: placing?.firstSeq ?? 0,
    base: placing ? ownBase(placing) : 0,
    pieces: placing?.pieces ?? [],
    parent: placing?.parent,
    times: AppendTimes.upTo(0, 0, 0), // read once the file is recovered
    generation: 0,
    rewinds: 0,
    replacing: false,
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
    const { problem, corruptSeq, ...records } = known;
    Object.assign(state, records);
    if (corruptSeq !== undefined) {
      state.corruptSeq = state.base + corruptSeq;
      logCorruption(context, sessionId, state.corruptSeq, problem);
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
    state.corruptSeq = state.base + base + scan.corrupt.seq;
    state.end = size;
    logCorruption(context, sessionId, state.corruptSeq, "it is not one JSON object");
    return Buffer.concat(entries);
  }
  state.end = scan.end;
  state.unterminated = scan.unterminated;
  if (scan.end < size) {
    context.log.warn(
      { sessionId, bytes: size - scan.end, seq: state.base + state.count },
      "cut off a torn record at the end of the session file",
    );
    await handle.truncate(scan.end);
  }
  if (scan.count > 0) {
    context.log.info(
      { sessionId, records: scan.count, from: state.base + base },
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

/** The header of a new file of ours with no messages yet. */
function newHeader(sessionId: string, createdAtMs: number, firstSeq: number): SessionHeader {
  return {
    sessionId,
    createdAtMs,
    agentLoopVersion: AGENT_LOOP_VERSION,
    messageCount: 0,
    firstSeq,
  };
}

/** `header` saying that the file ends right after it. */
function headerAtEnd(header: SessionHeader, width: number): SessionHeader {
  return { ...header, fileBytes: width + 1 };
}

/** The state of a new file of ours holding only its header. */
function emptyState(
  header: SessionHeader,
  headerWidth: number,
  inode: number,
  times: AppendTimes,
): FileState {
  const end = headerWidth + 1;
  return {
    layout: { kind: "own", headerWidth },
    inode,
    dataStart: end,
    firstLine: ownFirstLine(
      header.sessionId,
      headerWidth,
      header.createdAtMs,
      header.agentLoopVersion,
    ),
    createdAtMs: header.createdAtMs,
    agentLoopVersion: header.agentLoopVersion,
    count: 0,
    end,
    unterminated: false,
    durable: 0,
    entrySynced: false,
    updatedAtMs: header.createdAtMs,
    firstSeq: header.firstSeq ?? 0,
    base: ownBase(header),
    pieces: header.pieces ?? [],
    parent: header.parent,
    times,
    generation: 0,
    rewinds: 0,
    replacing: false,
  };
}

/** The pieces that cover seqs [from, to) of `pieces`, cut to that range. */
function clipPieces(pieces: readonly Piece[], from: number, to: number): Piece[] {
  return pieces
    .filter((piece) => piece.to > from && piece.from < to)
    .map((piece) => ({ ...piece, from: Math.max(piece.from, from), to: Math.min(piece.to, to) }));
}

function piecePaths(
  context: FileContext,
  sessionId: string,
  piece: Pick<Piece, "name">,
): { data: string; index: string } {
  const directory = join(context.forksDirectory, sessionId);
  return {
    data: join(directory, `${piece.name}.jsonl`),
    index: join(directory, `${piece.name}.idx`),
  };
}

/**
 * Hard-links a source's file and its index into a fork's pieces directory as `name`, checking
 * that the linked file is the one the server knows (a link to a file that replaced it, or to a
 * symbolic link, is refused), and makes the source's own index durable: it never fsyncs it.
 */
async function linkPiece(
  directory: string,
  name: string,
  source: PieceSource,
  parent: ForkOrigin["parent"],
): Promise<Piece> {
  const data = join(directory, `${name}.jsonl`);
  const index = join(directory, `${name}.idx`);
  await link(source.data, data);
  const linked = await lstat(data);
  if (!linked.isFile() || (source.inode !== undefined && linked.ino !== source.inode)) {
    throw new FileChangedError(parent.sessionId, "was replaced");
  }
  await link(source.index, index);
  if (source.inode !== undefined) {
    const handle = await open(index, "r");
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
  return { name, base: source.base, from: source.from, to: source.to };
}

/** A session's new files, written and fsynced under the tmp directory, to be moved into place. */
interface StagedFiles {
  data: string;
  index: string;
  times: string;
  inode: number;
}

/** What a staged file holds: its header line, records copied from another file, their index. */
interface StagedContent {
  header: Buffer;
  /** Bytes of another file, complete lines, copied after the header (a newline is added). */
  copy?: { from: FileHandle; start: number; end: number };
  /** Where the index entries of the copied records are: `count` entries from `first` on. */
  entries?: { index: string; first: number; count: number };
  firstLine: number;
  records: number;
  times: AppendTimes;
  /** The modification time to give the file (ms), when not now. */
  mtimeMs?: number;
}

/** Bytes copied per read when a file is rewritten. */
const COPY_BYTES = 1 << 20;

async function stageFiles(
  context: FileContext,
  sessionId: string,
  content: StagedContent,
): Promise<StagedFiles> {
  const base = join(context.tmpDirectory, `${sessionId}.${randomBytes(6).toString("hex")}`);
  const staged = { data: `${base}.jsonl`, index: `${base}.idx`, times: `${base}.times`, inode: 0 };
  try {
    const data = await open(staged.data, "wx", 0o644);
    try {
      await writeFully(data, content.header, 0);
      let position = content.header.length;
      const { copy } = content;
      if (copy) {
        const buffer = Buffer.allocUnsafe(Math.min(COPY_BYTES, copy.end - copy.start));
        for (let at = copy.start; at < copy.end; ) {
          const { bytesRead } = await copy.from.read(
            buffer,
            0,
            Math.min(buffer.length, copy.end - at),
            at,
          );
          if (bytesRead === 0) throw new Error("the file is shorter than its index says");
          await writeFully(data, buffer.subarray(0, bytesRead), position);
          at += bytesRead;
          position += bytesRead;
        }
        await writeFully(data, Buffer.from("\n"), position);
      }
      if (content.mtimeMs !== undefined) {
        await data.utimes(new Date(), new Date(content.mtimeMs));
      }
      await data.datasync();
      staged.inode = (await data.stat()).ino;
    } finally {
      await data.close();
    }
    const dataStart = content.header.length;
    const identity = { inode: staged.inode, dataStart, firstLine: content.firstLine };
    const index = await open(staged.index, "wx", 0o644);
    try {
      await writeFully(index, encodeHeader({ ...identity, durable: content.records }), 0);
      if (content.entries && content.copy) {
        await copyEntries(content.entries, index, dataStart - content.copy.start);
      }
    } finally {
      await index.close();
    }
    await writeNew(staged.times, content.times.encode());
  } catch (error) {
    await removeStaged(staged);
    throw error;
  }
  return staged;
}

/** Copies index entries into a new index (after its header), their records moved by `shift` bytes. */
async function copyEntries(
  entries: NonNullable<StagedContent["entries"]>,
  target: FileHandle,
  shift: number,
): Promise<void> {
  const source = await open(entries.index, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.allocUnsafe(ENTRIES_PER_READ * INDEX_ENTRY_BYTES);
    for (let done = 0; done < entries.count; ) {
      const count = Math.min(ENTRIES_PER_READ, entries.count - done);
      const bytes = count * INDEX_ENTRY_BYTES;
      const at = entryOffset(entries.first + done);
      const { bytesRead } = await source.read(buffer, 0, bytes, at);
      if (bytesRead < bytes) throw new Error("the index holds fewer records than the file");
      for (let offset = 0; offset < bytes; offset += INDEX_ENTRY_BYTES) {
        buffer.writeDoubleLE(buffer.readDoubleLE(offset) + shift, offset);
      }
      await writeFully(target, buffer.subarray(0, bytes), entryOffset(done));
      done += count;
    }
  } finally {
    await source.close();
  }
}

async function writeNew(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, "wx", 0o644);
  try {
    await writeFully(handle, bytes, 0);
  } finally {
    await handle.close();
  }
}

/** Removes what is left of staged files (those moved into place are gone already). */
async function removeStaged(staged: StagedFiles): Promise<void> {
  for (const path of [staged.data, staged.index, staged.times]) {
    await unlink(path).catch(() => undefined);
  }
}

function timesPath(context: FileContext, sessionId: string): string {
  return join(context.indexDirectory, `${sessionId}.times`);
}

/**
 * Deletes a session's sidecars (its index and append times) and its pieces directory (a fork's
 * links to what it shares: the files stay while others link them). The caller deletes the file.
 */
export async function removeSidecars(context: FileContext, sessionId: string): Promise<void> {
  for (const path of [indexPath(context, sessionId), timesPath(context, sessionId)]) {
    context.pool.discard(path);
    await unlink(path).catch(() => undefined);
  }
  await rm(join(context.forksDirectory, sessionId), { recursive: true, force: true });
}

/** The error of a read that a rewind overtook: the messages it was reading are gone. */
function rewoundWhileRead(sessionId: string): SessionStoreError {
  return new SessionStoreError(
    Code.Aborted,
    `session ${sessionId} was rewound or trimmed while it was read; read it again`,
  );
}

/** A whole (small) file's bytes. */
async function readWhole(handle: FileHandle): Promise<Buffer> {
  const { size } = await handle.stat();
  const bytes = Buffer.alloc(size);
  const { bytesRead } = await handle.read(bytes, 0, size, 0);
  return bytes.subarray(0, bytesRead);
}
