import { type FileHandle, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { describeCause, syncDirectory } from "./file-io.js";
import { encodeRecord, type JournalRecord } from "./journal-records.js";

/** A session file whose journaled bytes a checkpoint makes durable in the file itself. */
export interface JournalMember {
  /** Fsyncs the file (a no-op when nothing journaled since the last call needs it). */
  checkpoint(): Promise<void>;
}

/** What one directory of session files uses of the journal (paths relative to that directory). */
export interface SessionJournal {
  /**
   * Makes durable the fact that `name` (inode `inode`) holds `bytes` at offset `start`: one
   * fsync of the journal serves every commit made meanwhile, whatever its session. Resolves to
   * the segment that holds it.
   */
  commit(
    member: JournalMember,
    name: string,
    inode: number,
    start: number,
    bytes: Buffer,
  ): Promise<number>;
  /** Durably tells a replay to skip what the journal holds for `name` so far. */
  forget(name: string, inode: number): Promise<void>;
  /** Whether `segment` is still in the journal (not yet checkpointed away). */
  holds(segment: number): boolean;
}

/** Sizes and times of the journal; defaults suit production, tests shrink them. */
export interface JournalOptions {
  /** A segment this large is checkpointed and a new one started. */
  segmentBytes: number;
  /** A segment with records is checkpointed at the latest this long after the last checkpoint. */
  checkpointIntervalMs: number;
}

export const JOURNAL_DEFAULTS: JournalOptions = {
  segmentBytes: 64 << 20,
  checkpointIntervalMs: 30_000,
};

/** The counters of the journal's work (logged at close, read by the benchmarks). */
export interface JournalStats {
  commits: number;
  /** fdatasyncs of the journal: each one made a group of commits durable. */
  syncs: number;
  checkpoints: number;
}

interface Segment {
  number: number;
  handle: FileHandle;
  size: number;
  /** Files with bytes journaled in this segment: fsynced before it is deleted. */
  members: Set<JournalMember>;
}

interface QueuedRecord {
  frames: Buffer[];
  member: JournalMember | undefined;
  resolve(segment: number): void;
  reject(error: unknown): void;
}

const SEGMENT_SUFFIX = ".journal";

/**
 * A commit that failed, with its cause's code and description; `takenBack` says that the
 * journal holds nothing of it.
 */
export class JournalWriteError extends Error {
  readonly code: string | undefined;

  constructor(
    cause: unknown,
    readonly takenBack: boolean,
  ) {
    super(describeCause(cause), { cause });
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}

/**
 * The file backend's journal: durable appends of every session go to one append-only file,
 * fsynced once for all the appends that arrive while the previous fsync runs (group commit),
 * instead of one fdatasync per session file. The bytes are written to the session files too,
 * before they are journaled, so the files are always complete for readers; what the journal adds
 * is durability. A checkpoint (when a segment is full, every `checkpointIntervalMs`, and at
 * close) starts a new segment, fsyncs the files journaled in the old ones and deletes them, so
 * the journal stays bounded. At start, `openJournal`'s caller replays the segments a crash left
 * (journal-replay.ts) before any session is opened.
 */
export class Journal {
  readonly stats: JournalStats = { commits: 0, syncs: 0, checkpoints: 0 };
  readonly #directory: string;
  readonly #log: Logger;
  readonly #options: JournalOptions;
  #segment: Segment;
  /** Segments rotated out, oldest first, whose files are not yet all fsynced. */
  readonly #retired: Segment[] = [];
  #queue: QueuedRecord[] = [];
  #running = false;
  #rotationWanted = false;
  #rotationWaiters: (() => void)[] = [];
  #checkpointing: Promise<void> | undefined;
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  private constructor(directory: string, segment: Segment, log: Logger, options: JournalOptions) {
    this.#directory = directory;
    this.#segment = segment;
    this.#log = log;
    this.#options = options;
    this.#timer = setInterval(() => void this.checkpoint(), options.checkpointIntervalMs).unref();
  }

  /** Starts a journal in `directory`, which holds no segments (any left were replayed). */
  static async start(
    directory: string,
    log: Logger,
    options: JournalOptions = JOURNAL_DEFAULTS,
  ): Promise<Journal> {
    const segment = await createSegment(directory, 1);
    return new Journal(directory, segment, log, options);
  }

  /** The journal as one directory of session files uses it: `prefix` is its path in the data directory. */
  forDirectory(prefix: string): SessionJournal {
    const pathOf = (name: string) => (prefix === "" ? name : `${prefix}/${name}`);
    return {
      commit: (member, name, inode, start, bytes) =>
        this.#append(member, { kind: "append", path: pathOf(name), inode, start, bytes }),
      forget: async (name, inode) => {
        await this.#append(undefined, { kind: "forget", path: pathOf(name), inode });
      },
      holds: (segment) =>
        segment === this.#segment.number || this.#retired.some((s) => s.number === segment),
    };
  }

  /**
   * Starts a new segment, fsyncs the files journaled in the older ones and deletes those. A
   * file that cannot be fsynced keeps its segment (retried at the next checkpoint).
   */
  checkpoint(): Promise<void> {
    this.#checkpointing ??= this.#checkpoint().finally(() => {
      this.#checkpointing = undefined;
    });
    return this.#checkpointing;
  }

  /** Checkpoints everything and deletes every segment: after a clean close nothing is replayed. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.checkpoint();
    this.#closed = true;
    await this.#whenIdle();
    const current = this.#segment;
    if (current.members.size > 0 || current.size > 0) {
      this.#retired.push(current);
      await this.#checkpointRetired();
    }
    await current.handle.close().catch(() => undefined);
    if (this.#retired.length === 0) {
      await unlink(segmentPath(this.#directory, current.number)).catch(() => undefined);
      await syncDirectory(this.#directory);
    }
  }

  #append(member: JournalMember | undefined, record: JournalRecord): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the journal is closed"));
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ frames: encodeRecord(record), member, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running) return;
    this.#running = true;
    // After the I/O callbacks under way: appends that completed together share the fsync.
    setImmediate(() => void this.#run());
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#rotationWanted) {
        if (this.#rotationWanted && !(await this.#rotate())) return;
        const batch = this.#queue;
        if (batch.length === 0) continue;
        this.#queue = [];
        await this.#writeBatch(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #writeBatch(batch: readonly QueuedRecord[]): Promise<void> {
    const segment = this.#segment;
    const frames = batch.flatMap((record) => record.frames);
    try {
      let size = segment.size;
      for (let written = 0; written < frames.length; ) {
        const chunk = frames.slice(written, written + 1024);
        const { bytesWritten } = await segment.handle.writev(chunk, size);
        const expected = chunk.reduce((sum, frame) => sum + frame.length, 0);
        if (bytesWritten !== expected) throw new Error("a short write to the journal");
        size += bytesWritten;
        written += chunk.length;
      }
      await segment.handle.datasync();
      segment.size = size;
    } catch (error) {
      const failure = new JournalWriteError(error, await this.#takeBack(segment));
      for (const record of batch) record.reject(failure);
      return;
    }
    this.stats.syncs++;
    this.stats.commits += batch.length;
    for (const record of batch) {
      if (record.member) segment.members.add(record.member);
      record.resolve(segment.number);
    }
    if (segment.size >= this.#options.segmentBytes) void this.checkpoint();
  }

  /**
   * Cuts a failed batch's bytes off the segment, so that no replay can store them; resolves to
   * whether that worked. When it did not, the segment may end in a torn frame, after which a
   * replay reads nothing: later records go to a new segment.
   */
  async #takeBack(segment: Segment): Promise<boolean> {
    try {
      await segment.handle.truncate(segment.size);
      await segment.handle.datasync();
      return true;
    } catch {
      this.#rotationWanted = true;
      return false;
    }
  }

  /**
   * Swaps in a new segment; the old one waits in `#retired` for its checkpoint. When no new
   * segment can be made, the records waiting fail and the next append tries again.
   */
  async #rotate(): Promise<boolean> {
    const old = this.#segment;
    let rotated = true;
    try {
      this.#segment = await createSegment(this.#directory, old.number + 1);
      this.#rotationWanted = false;
      this.#retired.push(old);
    } catch (error) {
      rotated = false;
      this.#log.error(
        { err: error },
        "could not start a new journal segment; retrying at the next append",
      );
      for (const record of this.#queue.splice(0)) record.reject(error);
    }
    for (const wake of this.#rotationWaiters.splice(0)) wake();
    return rotated;
  }

  async #checkpoint(): Promise<void> {
    if (this.#segment.size > 0 && !this.#closed) {
      await new Promise<void>((resolve) => {
        this.#rotationWaiters.push(resolve);
        this.#rotationWanted = true;
        this.#schedule();
      });
    }
    await this.#checkpointRetired();
  }

  /** Fsyncs the files of the retired segments, oldest first, and deletes each segment done. */
  async #checkpointRetired(): Promise<void> {
    let deleted = false;
    while (this.#retired.length > 0) {
      const segment = this.#retired[0] as Segment;
      const results = await Promise.allSettled(
        [...segment.members].map((member) => member.checkpoint()),
      );
      const failed = results.find((result) => result.status === "rejected");
      if (failed) {
        this.#log.warn(
          { err: (failed as PromiseRejectedResult).reason },
          "a session file could not be fsynced at a journal checkpoint; its journal segment is kept",
        );
        break;
      }
      await segment.handle.close().catch(() => undefined);
      await unlink(segmentPath(this.#directory, segment.number));
      this.#retired.shift();
      deleted = true;
    }
    if (deleted) {
      await syncDirectory(this.#directory);
      this.stats.checkpoints++;
    }
  }

  async #whenIdle(): Promise<void> {
    while (this.#running) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The segments in `directory`, oldest first (their paths). */
export async function journalSegments(directory: string): Promise<string[]> {
  const names = (await readdir(directory)).filter((name) => /^\d{16}\.journal$/.test(name));
  return names.sort().map((name) => join(directory, name));
}

async function createSegment(directory: string, number: number): Promise<Segment> {
  const handle = await open(segmentPath(directory, number), "w");
  try {
    // The segment's entry must survive a crash before any record in it is acknowledged.
    await syncDirectory(directory);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { number, handle, size: 0, members: new Set() };
}

function segmentPath(directory: string, number: number): string {
  return join(directory, `${String(number).padStart(16, "0")}${SEGMENT_SUFFIX}`);
}
