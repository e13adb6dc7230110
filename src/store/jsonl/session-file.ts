import type { FileHandle } from "node:fs/promises";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../../errors.js";
import { AGENT_LOOP_VERSION, type StoredSessionMeta } from "../storage.js";
import { isNotFound, storageFailure, writeFully } from "./file-io.js";
import type { HandlePool } from "./handle-pool.js";
import { headerWidthFor, parseHeader, renderHeader, type SessionHeader } from "./header.js";
import { findLineStart, readBuffer, readLines } from "./lines.js";
import { scanRecords } from "./records.js";

/** What a session file needs from its storage. */
export interface FileContext {
  directory: string;
  pool: HandlePool;
  log: Logger;
  /** Makes the directory's entries durable; concurrent calls share one fsync. */
  syncDirectory(): Promise<void>;
  /** Counters of the work done, logged when the storage closes (and read by the benchmarks). */
  stats: WriteStats;
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
 * Bytes of messages per page read for Load and Watch: large enough to amortize each read and
 * response, small enough that the pages grpc-js queues for a slow client stay a few megabytes.
 */
const PAGE_BYTES = 256 << 10;

export function sessionPath(directory: string, sessionId: string): string {
  return join(directory, `${sessionId}.jsonl`);
}

interface FileLayout {
  createdAtMs: number;
  agentLoopVersion: string;
  /** Width of the padded header line, without its newline; messages start one byte after. */
  headerWidth: number;
  count: number;
  /** File length covering `count` messages; bytes past it are not part of the log. */
  end: number;
  updatedAtMs: number;
  /** Seq of the first record that is not a JSON object, when the file has one. */
  corruptSeq?: number;
}

/**
 * One session's JSONL file: motosan's header line, then one message per line. Appends write only
 * the new lines and then rewrite the fixed-width header in place, so a flush costs the same
 * whatever the session's length. The caller runs one `append` at a time; reads may overlap it and
 * see only lines counted before they started.
 */
export class SessionFile {
  private durableCount: number;
  /** Whether the file's directory entry is known to be durable. */
  private entrySynced: boolean;

  private constructor(
    private readonly context: FileContext,
    readonly sessionId: string,
    private readonly layout: FileLayout,
    durable: boolean,
  ) {
    this.durableCount = durable ? layout.count : 0;
    this.entrySynced = durable;
  }

  private get path(): string {
    return sessionPath(this.context.directory, this.sessionId);
  }

  /** Creates the file with its first messages; fails with EEXIST when it exists. */
  static async create(
    context: FileContext,
    sessionId: string,
    createdAtMs: number,
    messages: readonly string[],
    sync: boolean,
  ): Promise<SessionFile> {
    const header = {
      sessionId,
      createdAtMs,
      agentLoopVersion: AGENT_LOOP_VERSION,
      messageCount: 0,
    };
    const headerWidth = headerWidthFor(header);
    const file = new SessionFile(
      context,
      sessionId,
      { ...header, headerWidth, count: 0, end: headerWidth + 1, updatedAtMs: createdAtMs },
      false,
    );
    try {
      await context.pool.use(file.path, (handle) => file.appendWith(handle, messages, sync), true);
    } catch (error) {
      context.pool.discard(file.path);
      await rm(file.path, { force: true });
      throw error instanceof SessionStoreError ? error : storageFailure("create", sessionId, error);
    }
    return file;
  }

  /**
   * Opens an existing file, repairing what a crash can leave: lines written after the last header
   * update are counted, and a torn last record is cut off and logged. A file that is not in our
   * fixed-width layout (written by motosan, header-less, empty) is rewritten into it once.
   * Resolves to undefined when there is no file.
   */
  static async open(context: FileContext, sessionId: string): Promise<SessionFile | undefined> {
    const path = sessionPath(context.directory, sessionId);
    let lease: Awaited<ReturnType<HandlePool["acquire"]>>;
    try {
      lease = await context.pool.acquire(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw storageFailure("open", sessionId, error);
    }
    try {
      return await SessionFile.recover(context, sessionId, lease.handle);
    } catch (error) {
      throw error instanceof SessionStoreError ? error : storageFailure("open", sessionId, error);
    } finally {
      lease.release();
    }
  }

  private static async recover(
    context: FileContext,
    sessionId: string,
    handle: FileHandle,
  ): Promise<SessionFile> {
    const stat = await handle.stat();
    let firstLine: { text: string; end: number } | undefined;
    for await (const batch of readLines(handle, 0, stat.size, 1)) {
      firstLine = { text: batch.lines[0] ?? "", end: batch.end };
    }
    const header = firstLine && parseHeader(firstLine.text);
    if (firstLine && header && isOwnLayout(header, sessionId, firstLine.end - 1, stat.size)) {
      const file = new SessionFile(
        context,
        sessionId,
        {
          createdAtMs: header.createdAtMs,
          agentLoopVersion: header.agentLoopVersion,
          headerWidth: firstLine.end - 1,
          count: header.messageCount,
          end: header.fileBytes ?? 0,
          updatedAtMs: stat.mtimeMs,
        },
        true,
      );
      if (stat.size > file.layout.end) await file.countUnheadedLines(handle, stat.size);
      return file;
    }
    const layout = await rewriteInOwnLayout(context, sessionId, handle, {
      header,
      dataStart: header && firstLine ? firstLine.end : 0,
      size: stat.size,
      createdAtMs: header?.createdAtMs ?? Math.round(stat.birthtimeMs || stat.mtimeMs),
      updatedAtMs: stat.mtimeMs,
    });
    return new SessionFile(context, sessionId, layout, layout.corruptSeq === undefined);
  }

  meta(): StoredSessionMeta {
    return {
      sessionId: this.sessionId,
      createdAtMs: this.layout.createdAtMs,
      agentLoopVersion: this.layout.agentLoopVersion,
      messageCount: this.layout.count,
      durableCount: this.durableCount,
      updatedAtMs: Math.round(this.layout.updatedAtMs),
    };
  }

  /** Appends messages at `firstSeq` (the current count); with `sync`, makes the whole log durable. */
  async append(firstSeq: number, messages: readonly string[], sync: boolean): Promise<void> {
    this.checkIntact();
    if (firstSeq !== this.layout.count) {
      throw new Error(
        `append to ${this.sessionId} at seq ${firstSeq}, but it holds ${this.layout.count}`,
      );
    }
    await this.context.pool.use(this.path, (handle) => this.appendWith(handle, messages, sync));
  }

  /** Reads `count` messages from `fromSeq` on, in pages; the range lies within the count. */
  async *read(fromSeq: number, count: number): AsyncGenerator<string[]> {
    this.checkIntact();
    if (count <= 0) return;
    const { headerWidth, end, count: total } = this.layout;
    // The handle is borrowed per page, not across yields: a slow reader holds no file open.
    let position = await this.context.pool.use(this.path, (handle) =>
      findLineStart(handle, headerWidth + 1, end, total, fromSeq),
    );
    let seq = fromSeq;
    // One buffer for the whole read: a page's lines are copied out of it as strings.
    const chunk = readBuffer(Math.min(PAGE_BYTES, end - position));
    while (seq < fromSeq + count) {
      const from = position;
      const batch = await this.context.pool.use(this.path, async (handle) => {
        for await (const batch of readLines(handle, from, end, fromSeq + count - seq, chunk)) {
          return batch;
        }
        return undefined;
      });
      if (!batch) throw this.corruptAt(seq, "is missing: the file is shorter than its header says");
      const bad = batch.lines.findIndex((line) => !looksLikeObject(line));
      if (bad !== -1) throw this.corruptAt(seq + bad, "is not a JSON object");
      position = batch.end;
      seq += batch.lines.length;
      yield batch.lines;
    }
  }

  /** Marks the session corrupt from `seq` on (reads and appends refused): the DATA_LOSS error. */
  private corruptAt(seq: number, problem: string): SessionStoreError {
    this.context.log.error(
      { sessionId: this.sessionId, seq },
      `a record of the session file ${problem}`,
    );
    this.layout.corruptSeq = Math.min(seq, this.layout.corruptSeq ?? seq);
    return this.corruption(this.layout.corruptSeq);
  }

  private async appendWith(
    handle: FileHandle,
    messages: readonly string[],
    sync: boolean,
  ): Promise<void> {
    const before = { count: this.layout.count, end: this.layout.end };
    if (messages.length > 0) {
      const lines = Buffer.from(`${messages.join("\n")}\n`, "utf8");
      const after = { count: before.count + messages.length, end: before.end + lines.length };
      try {
        if (before.count === 0) {
          // A new file: header and first lines in one write.
          await writeFully(handle, Buffer.concat([this.renderHeader(after), lines]), 0);
        } else {
          await writeFully(handle, lines, before.end);
          await writeFully(handle, this.renderHeader(after), 0);
        }
      } catch (error) {
        await this.rollBack(handle, before);
        throw storageFailure("append to", this.sessionId, error);
      }
      Object.assign(this.layout, after, { updatedAtMs: Date.now() });
      const { stats } = this.context;
      stats.writes++;
      stats.messages += messages.length;
      stats.bytes += lines.length;
    }
    if (sync && (this.durableCount < this.layout.count || !this.entrySynced)) {
      try {
        await handle.datasync();
        this.context.stats.fileSyncs++;
        if (!this.entrySynced) await this.context.syncDirectory();
      } catch (error) {
        // The lines may not be on disk: take back this call's lines so a retry stores them once.
        await this.rollBack(handle, before);
        Object.assign(this.layout, before);
        throw storageFailure("sync", this.sessionId, error);
      }
      this.entrySynced = true;
      this.durableCount = this.layout.count;
    }
  }

  /** Cuts the file back to a previous count after a failed write, so no partial line remains. */
  private async rollBack(handle: FileHandle, to: { count: number; end: number }): Promise<void> {
    try {
      await handle.truncate(to.end);
      await writeFully(handle, this.renderHeader(to), 0);
    } catch (error) {
      // The next open recounts from the header; until then, writes past `to.end` overwrite.
      this.context.log.error(
        { sessionId: this.sessionId, err: error },
        "could not roll back a failed write",
      );
    }
  }

  /**
   * Counts complete records a crash left after the header's count and cuts off a torn last one.
   * A bad record with valid ones after it is not a crash's doing: the session is marked corrupt
   * and the file left as it is for an operator.
   */
  private async countUnheadedLines(handle: FileHandle, size: number): Promise<void> {
    const scan = await scanRecords(handle, this.layout.end, size, { lenient: false });
    if (scan.corrupt) {
      this.layout.corruptSeq = this.layout.count + scan.corrupt.seq;
      logCorruption(this.context, this.sessionId, this.layout.corruptSeq, scan.corrupt.offset);
      return;
    }
    if (scan.end < size) {
      logTornTail(this.context, this.sessionId, size - scan.end, this.layout.count + scan.count);
      await handle.truncate(scan.end);
    }
    this.context.log.info(
      { sessionId: this.sessionId, recovered: scan.count },
      "recounted the session file after an unclean stop",
    );
    Object.assign(this.layout, { count: this.layout.count + scan.count, end: scan.end });
    await writeFully(handle, this.renderHeader(this.layout), 0);
    await handle.datasync();
    this.durableCount = this.layout.count;
  }

  private renderHeader(at: { count: number; end: number }): Buffer {
    const header: SessionHeader = {
      sessionId: this.sessionId,
      createdAtMs: this.layout.createdAtMs,
      agentLoopVersion: this.layout.agentLoopVersion,
      messageCount: at.count,
      fileBytes: at.end,
    };
    return renderHeader(header, this.layout.headerWidth);
  }

  private checkIntact(): void {
    if (this.layout.corruptSeq !== undefined) throw this.corruption(this.layout.corruptSeq);
  }

  private corruption(seq: number): SessionStoreError {
    return new SessionStoreError(
      Code.DataLoss,
      `session ${this.sessionId} has a corrupt record at seq ${seq}; ` +
        "an operator must repair its file (see the README, 'Repairing a session file')",
    );
  }
}

/**
 * A cheap check, on every record served, that it is framed as one JSON object (the full parse
 * happens when a file is recovered or rewritten): garbage a disk or an editor left is refused
 * with DATA_LOSS rather than served as data.
 */
function looksLikeObject(line: string): boolean {
  const trimmed = line.trim();
  return trimmed.startsWith("{") && trimmed.endsWith("}");
}

/** Whether a header is one we wrote for this file and the file holds at least what it counts. */
function isOwnLayout(
  header: SessionHeader,
  sessionId: string,
  width: number,
  size: number,
): boolean {
  return (
    header.sessionId === sessionId &&
    header.fileBytes !== undefined &&
    header.fileBytes >= width + 1 &&
    header.fileBytes <= size &&
    width >= headerWidthFor(header)
  );
}

interface RewriteSource {
  header: SessionHeader | undefined;
  dataStart: number;
  size: number;
  createdAtMs: number;
  updatedAtMs: number;
}

/**
 * Copies a file that is not in our layout into it, atomically (temp file, fsync, rename, fsync
 * of the directory): blank lines dropped, CRLF endings made LF, a torn last record cut off and
 * logged. A corrupt record before the end is never skipped: the file is left as it is and the
 * returned layout names the corrupt seq.
 */
async function rewriteInOwnLayout(
  context: FileContext,
  sessionId: string,
  source: FileHandle,
  from: RewriteSource,
): Promise<FileLayout> {
  const path = sessionPath(context.directory, sessionId);
  const tempPath = join(context.directory, `.${sessionId}.jsonl.tmp`);
  const header = {
    sessionId,
    createdAtMs: from.createdAtMs,
    agentLoopVersion: from.header?.agentLoopVersion ?? AGENT_LOOP_VERSION,
    messageCount: 0,
  };
  const headerWidth = headerWidthFor(header);
  const layout: FileLayout = {
    ...header,
    headerWidth,
    count: 0,
    end: headerWidth + 1,
    updatedAtMs: from.updatedAtMs,
  };
  // Opened outside the pool: the source already holds a pooled handle, and waiting for a second
  // one while holding it could deadlock a full pool.
  await rm(tempPath, { force: true }); // left by a crash during an earlier rewrite
  const temp = await open(tempPath, "wx+");
  try {
    const scan = await scanRecords(source, from.dataStart, from.size, {
      lenient: true,
      onRecords: async (records) => {
        const data = Buffer.from(`${records.join("\n")}\n`, "utf8");
        await writeFully(temp, data, layout.end);
        layout.count += records.length;
        layout.end += data.length;
      },
    });
    if (scan.corrupt) {
      logCorruption(context, sessionId, scan.corrupt.seq, scan.corrupt.offset);
      return { ...layout, count: scan.count, corruptSeq: scan.corrupt.seq };
    }
    if (scan.end < from.size) logTornTail(context, sessionId, from.size - scan.end, layout.count);
    const ownHeader = renderHeader(
      { ...header, messageCount: layout.count, fileBytes: layout.end },
      headerWidth,
    );
    await writeFully(temp, ownHeader, 0);
    await temp.datasync();
    await rename(tempPath, path);
    context.pool.discard(path);
    await context.syncDirectory();
    context.log.info(
      { sessionId, messages: layout.count, hadHeader: from.header !== undefined },
      "rewrote the session file in the fixed-width header layout",
    );
    return layout;
  } finally {
    await temp.close();
    await rm(tempPath, { force: true });
  }
}

function logTornTail(context: FileContext, sessionId: string, bytes: number, seq: number): void {
  context.log.warn(
    { sessionId, bytes, seq },
    "cut off a torn record at the end of the session file",
  );
}

function logCorruption(context: FileContext, sessionId: string, seq: number, offset: number): void {
  context.log.error(
    { sessionId, seq, offset },
    "session file has a corrupt record before its end; serving it is refused until repaired",
  );
}
