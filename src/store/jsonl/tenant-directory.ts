import { lstat, mkdir, open, readdir, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import {
  Code,
  labelsRevisionMismatch,
  lengthMismatch,
  SessionStoreError,
  sessionExists,
  sessionNotFound,
} from "../../errors.js";
import { applyLabelChange, type Labels, sameLabels, sortedLabels } from "../../labels.js";
import { isValidSessionId } from "../../session-id.js";
import { type BufferBudget, bufferedSize } from "../buffer-budget.js";
import type { CatalogEntry } from "../session-catalog.js";
import type {
  Appended,
  Appending,
  AppendOptions,
  DeleteGuard,
  FlushFailure,
  FlushReport,
  ListQuery,
  MessagePage,
  ReadRange,
  Rewound,
  SessionChange,
  SessionMeta,
  SessionStorage,
  Trimmed,
} from "../storage.js";
import type { StorageEvents } from "../storage-events.js";
import { Subscribers } from "../subscribers.js";
import { DirectoryCatalog } from "./directory-catalog.js";
import { DirectoryWatch, type EntryEvent } from "./directory-watch.js";
import { coalesce, isNotFound, storageFailure, syncDirectory, writeFully } from "./file-io.js";
import type { HandlePool } from "./handle-pool.js";
import type { SessionJournal } from "./journal.js";
import {
  LabelFiles,
  LabelsNotWritten,
  labelsFailure,
  NO_LABELS,
  type StoredLabels,
} from "./label-files.js";
import { joinLines } from "./lines.js";
import {
  FileChangedError,
  type FileContext,
  removeSidecars,
  SessionFile,
  sessionPath,
} from "./session-file.js";
import { type Deferred, type FlushPolicy, SessionLog } from "./session-log.js";
import { SortedIds } from "./sorted-ids.js";

const FILE_SUFFIX = ".jsonl";
/** The server's own entries inside the data directory (motosan lists only `*.jsonl` files). */
/** The server's own files in a directory of sessions (indexes, labels, forks, the journal). */
export const OWN_DIRECTORY = ".sessionstore";
/** Where tenants' directories live, under the data directory. */
export const TENANTS_DIRECTORY = "tenants";
/** How long changes of session files are gathered before they are looked at (one stat each). */
const CHANGE_CHECK_DELAY_MS = 20;

/** What creating a session gives it: its creation time, and its labels when the request has them. */
interface Creation {
  createdAtMs: number;
  labels: Labels | undefined;
  /** The seq of its first message (above 0 for a copy of a trimmed session). */
  firstSeq: number;
}

/** What every tenant's directory shares: the root's handles, buffers, counters and state. */
export interface SharedFiles {
  policy: FlushPolicy;
  pool: HandlePool;
  budget: BufferBudget;
  log: Logger;
  /** Files not changed since this time (ms) were made durable by the start-up sync. */
  syncedBeforeMs: number;
  stats: FileContext["stats"];
  events: StorageEvents;
  /** Whether the storage is closing: new work is refused. */
  closing(): boolean;
  /** Starts the writes of every tenant's buffers (the budget of all sessions is full). */
  writeSoonEverywhere(): void;
  /** The journal as the session files of `directory` use it. */
  journalFor(directory: string): SessionJournal;
}

/**
 * One directory of session files, `<directory>/<session_id>.jsonl` (the data directory itself
 * without tenants, `<data-dir>/<tenant>/` for each tenant), plus the server's sidecar indexes
 * and labels (LabelFiles) under its `.sessionstore/`. Each session in use is a SessionLog, its
 * buffer and single writer; listings by labels or update time come from a DirectoryCatalog.
 *
 * The directory is the truth: nothing is cached about a session that is not there, so a file
 * that appears while the server runs (copied from motosan, restored from a backup) is served
 * from the next call on, and creating a session whose file exists opens it instead. The server
 * never deletes, truncates or replaces a file it did not create, except to cut a torn tail, and
 * never follows a symbolic link.
 */
export class TenantDirectory implements SessionStorage {
  readonly #shared: SharedFiles;
  readonly #budget: BufferBudget;
  readonly #subscribers = new Subscribers();
  /** Sessions in use, by id: each opened once (its file recovered once) and kept. */
  readonly #logs = new Map<string, SessionLog>();
  readonly #opening = new Map<string, Promise<SessionLog | undefined>>();
  readonly #deleting = new Map<string, Promise<boolean>>();
  /** Ids forks are being created under: a second fork to one of them is refused. */
  readonly #forking = new Set<string>();
  /** Ids of the session files in the directory, kept current by the directory watch. */
  #ids = new SortedIds([]);
  /** False when the directory cannot be watched: List then reads it every time. */
  #idsCurrent = true;
  /** Entries refused once (a symbolic link, a directory): logged once, not at every List. */
  readonly #refused = new Set<string>();
  readonly #directory: string;
  #context: FileContext | undefined;
  #labelFiles: LabelFiles | undefined;
  /** For listings by update time or labels; built at the first. */
  #catalog: DirectoryCatalog | undefined;
  #watch: DirectoryWatch | undefined;
  /** Session files whose content changed (the watch said), looked at together soon. */
  readonly #changed = new Set<string>();
  #changeCheck: NodeJS.Timeout | undefined;

  constructor(shared: SharedFiles, directory: string) {
    this.#shared = shared;
    this.#budget = shared.budget;
    this.#directory = directory;
  }

  /** Whether the storage is closing: new work is refused. */
  get #closing(): boolean {
    return this.#shared.closing();
  }

  /** Makes the directory (which exists) ready, with its own subdirectory, and learns its sessions. */
  async open(): Promise<void> {
    const { log } = this.#shared;
    const directory = this.#directory;
    const own = await ownDirectory(directory, OWN_DIRECTORY);
    const indexDirectory = await ownDirectory(own, "index");
    const forksDirectory = await ownDirectory(own, "forks");
    const tmpDirectory = await ownDirectory(own, "tmp");
    // New files a rewind, trim or fork was writing when the server stopped: never in use.
    for (const name of await readdir(tmpDirectory)) {
      await rm(join(tmpDirectory, name), { recursive: true, force: true });
    }
    const labelFiles = new LabelFiles(await ownDirectory(own, "labels"), log);
    this.#labelFiles = labelFiles;
    this.#context = {
      directory,
      indexDirectory,
      forksDirectory,
      tmpDirectory,
      pool: this.#shared.pool,
      log,
      syncDirectory: coalesce(() => syncDirectory(directory)),
      syncedBeforeMs: this.#shared.syncedBeforeMs,
      stats: this.#shared.stats,
      events: this.#shared.events,
      journal: this.#shared.journalFor(directory),
    };
    this.#catalog = new DirectoryCatalog({
      sessionIds: () => this.#ids.all(),
      known: (sessionId) => this.#catalogEntryOf(sessionId),
      filePath: (sessionId) => sessionPath(directory, sessionId),
      labels: labelFiles,
    });
    this.#watch = new DirectoryWatch(
      directory,
      (name, event) => this.#onEntryChanged(name, event),
      () => {
        this.#idsCurrent = false;
      },
      log,
    );
    this.#ids = await this.#readIds();
    await labelFiles.removeOrphans((sessionId) => this.#ids.has(sessionId));
  }

  /** Sessions with files here. */
  get sessionCount(): number {
    return this.#ids.size;
  }

  /** Sessions in use: their logs (and buffers) are in memory. */
  get openSessionCount(): number {
    return this.#logs.size;
  }

  /**
   * Writes and fsyncs every log's acknowledged messages and ends the logs; resolves to how many
   * sessions had acknowledged messages that could not be written (each logged).
   */
  async close(): Promise<number> {
    this.#watch?.close();
    clearTimeout(this.#changeCheck);
    const { log } = this.#shared;
    const logs = [...this.#logs.values()];
    const flushed = await Promise.allSettled(logs.map((sessionLog) => sessionLog.flushAll()));
    let failedSessions = 0;
    for (const [index, sessionLog] of logs.entries()) {
      const unwritten = await sessionLog.close();
      const outcome = flushed[index];
      if (unwritten > 0 || outcome?.status === "rejected") {
        failedSessions++;
        log.error(
          {
            sessionId: sessionLog.sessionId,
            unwritten,
            err: outcome?.status === "rejected" ? outcome.reason : undefined,
          },
          "acknowledged messages of the session could not be written before shutdown",
        );
      }
    }
    return failedSessions;
  }

  /** Starts writing every buffered log, to free buffer room. */
  writeSoon(): void {
    for (const sessionLog of this.#logs.values()) sessionLog.writeSoon();
  }

  append(sessionId: string, messages: readonly Buffer[], options: AppendOptions): Appending {
    const bytes = bufferedSize(messages);
    this.#checkFits(bytes);
    const log =
      this.#closing || this.#deleting.has(sessionId) ? undefined : this.#logs.get(sessionId);
    if (log) {
      const placed = log.admit(messages, bytes, options);
      if (!isDeferred(placed)) return placed;
      return this.#appendSlowly(sessionId, messages, bytes, options, placed);
    }
    return this.#appendSlowly(sessionId, messages, bytes, options, undefined);
  }

  async *read(sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    const log = await this.#logFor(sessionId);
    if (log) yield* log.read(range);
  }

  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    return (await this.#logFor(sessionId))?.meta();
  }

  /**
   * Forks by linking the source's files (SessionFile.createFork): nothing of the shared
   * messages is read or copied.
   */
  async fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    this.#checkOpen();
    const source = await this.#existingLog(sessionId);
    const sidecars = this.#sidecars();
    await source.fork(atSeq, async (origin) => {
      if (this.#forking.has(newSessionId)) throw sessionExists(newSessionId);
      this.#forking.add(newSessionId);
      try {
        if (await this.#hasEntry(newSessionId)) throw sessionExists(newSessionId);
        const createdAtMs = Date.now();
        const forkLabels = initialLabels(applyLabelChange(source.labels.labels, labels));
        // Durable before the file, as for a new session (see #openLog).
        await sidecars
          .serially(newSessionId, () => sidecars.write(newSessionId, createdAtMs, forkLabels))
          .catch((error: unknown) => {
            throw storageFailure(
              "fork",
              newSessionId,
              error instanceof LabelsNotWritten ? error.cause : error,
            );
          });
        await SessionFile.createFork(this.#fileContext(), newSessionId, origin, createdAtMs);
      } finally {
        this.#forking.delete(newSessionId);
      }
    });
    this.#ids.add(newSessionId);
    this.#subscribers.notify(newSessionId, { kind: "appended" });
    return (await this.#existingLog(newSessionId)).meta();
  }

  async rewind(sessionId: string, toSeq: number, expectedSeq?: number): Promise<Rewound> {
    this.#checkOpen();
    const log = await this.#existingLog(sessionId);
    const dropped = await log.rewind(toSeq, expectedSeq);
    return { dropped, meta: log.meta() };
  }

  async trim(sessionId: string, beforeSeq: number): Promise<Trimmed> {
    this.#checkOpen();
    const log = await this.#existingLog(sessionId);
    const trimmed = await log.trim(beforeSeq);
    return { trimmed, meta: log.meta() };
  }

  async firstSeqSince(sessionId: string, timeMs: number): Promise<number> {
    return (await this.#existingLog(sessionId)).firstSeqSince(timeMs);
  }

  async list(query: ListQuery): Promise<SessionMeta[]> {
    if (!this.#idsCurrent) {
      this.#ids = await this.#readIds();
      this.#directoryCatalog().invalidate();
    }
    if (query.order !== "id" || query.selector.length > 0) return this.#listFromCatalog(query);
    const metas: SessionMeta[] = [];
    let after = query.after?.sessionId ?? "";
    // Entries that cannot be served are skipped, so a page is refilled from the ids after them.
    while (metas.length < query.limit) {
      const ids = this.#ids.page(query.prefix, after, query.limit - metas.length);
      if (ids.length === 0) break;
      const page = await Promise.all(
        ids.map((id) =>
          this.#logFor(id).then(
            (log) => log?.meta(),
            (error: unknown) => this.#skipInList(error),
          ),
        ),
      );
      for (const meta of page) if (meta) metas.push(meta);
      after = ids.at(-1) as string;
    }
    return metas;
  }

  async delete(sessionId: string, guard?: DeleteGuard): Promise<boolean> {
    this.#checkOpen();
    for (;;) {
      for (let pending = this.#deleting.get(sessionId); pending; ) {
        await pending.catch(() => undefined);
        pending = this.#deleting.get(sessionId);
      }
      if (!guard) break;
      const log = await this.#logFor(sessionId);
      if (!log) return false;
      // Decided and begun in one step: an append admitted from now on fails with NOT_FOUND.
      if (this.#deleting.has(sessionId) || this.#logs.get(sessionId) !== log) continue;
      if (!log.idleSince(guard.updatedBeforeMs)) return false;
      break;
    }
    const deletion = this.#deleteNow(sessionId);
    this.#deleting.set(sessionId, deletion);
    try {
      return await deletion;
    } finally {
      this.#deleting.delete(sessionId);
    }
  }

  async setLabels(
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    this.#checkOpen();
    for (;;) {
      const log = await this.#logFor(sessionId);
      if (!log) throw sessionNotFound(sessionId);
      const meta = await this.#sidecars().serially(sessionId, async () => {
        // Deleted, or its file changed outside the server, meanwhile: look again.
        if (log.isDiscarded) return undefined;
        const current = log.labels;
        if (expectedRevision !== undefined && expectedRevision !== current.revision) {
          throw labelsRevisionMismatch(sessionId, expectedRevision, current.revision);
        }
        const labels = applyLabelChange(current.labels, change);
        if (sameLabels(labels, current.labels)) return log.meta();
        const next = { labels, revision: current.revision + 1 };
        try {
          await this.#sidecars().write(sessionId, log.file.createdAtMs, next);
        } catch (error) {
          if (!(error instanceof LabelsNotWritten)) throw error;
          // What a restart would read is what this process serves.
          if (error.mayBeStored) this.#relabel(log, next);
          const failure = labelsFailure(sessionId, error);
          this.#shared.events.failed(failure.code);
          throw failure;
        }
        this.#relabel(log, next);
        return log.meta();
      });
      if (meta) return meta;
    }
  }

  async flush(sessionId?: string): Promise<FlushReport> {
    if (sessionId !== undefined) {
      const log = await this.#logFor(sessionId);
      return { flushed: log ? await log.flush() : 0, failures: [] };
    }
    const logs = [...this.#logs.values()];
    const results = await Promise.allSettled(logs.map((log) => log.flush()));
    let flushed = 0;
    const failures: FlushFailure[] = [];
    for (const [index, result] of results.entries()) {
      if (result.status === "fulfilled") flushed += result.value;
      else
        failures.push({
          sessionId: (logs[index] as SessionLog).sessionId,
          error: asStoreError(result.reason),
        });
    }
    return { flushed, failures };
  }

  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void {
    return this.#subscribers.add(sessionId, listener);
  }

  async #appendSlowly(
    sessionId: string,
    messages: readonly Buffer[],
    bytes: number,
    options: AppendOptions,
    deferred: Deferred | undefined,
  ): Promise<Appended> {
    for (let waiting = deferred; ; ) {
      if (waiting?.wait === "compare") {
        const resent = await waiting.resend;
        if (!isDeferred(resent)) return resent;
        waiting = resent;
        continue;
      }
      if (waiting?.wait === "room") await this.#roomFor(sessionId, waiting.bytes);
      if (waiting?.wait === "rewind") await waiting.done;
      this.#checkOpen();
      // Only a request with messages that may go first creates the session (one failing its
      // expected_seq must leave nothing behind).
      const firstSeq = options.firstSeq ?? 0;
      const creates = messages.length > 0 && (options.expectedSeq ?? firstSeq) === firstSeq;
      const log = await this.#logFor(
        sessionId,
        creates
          ? { createdAtMs: options.createdAtMs ?? Date.now(), labels: options.labels, firstSeq }
          : undefined,
      );
      if (!log) {
        options.chain?.checkOpen();
        const { expectedSeq } = options;
        if (expectedSeq !== undefined && expectedSeq !== firstSeq) {
          throw lengthMismatch(sessionId, expectedSeq, firstSeq);
        }
        return { ack: { sessionId, firstSeq, nextSeq: firstSeq, durableCount: 0 } };
      }
      const placed = log.admit(messages, bytes, options);
      if (!isDeferred(placed)) return placed;
      waiting = placed;
    }
  }

  /** Starts the writes that free buffer room for `bytes`, and waits for some to complete. */
  async #roomFor(sessionId: string, bytes: number): Promise<void> {
    this.#logs.get(sessionId)?.writeSoon();
    if (this.#budget.isTotalFull(bytes)) this.#shared.writeSoonEverywhere();
    await this.#budget.changed();
  }

  #checkFits(bytes: number): void {
    const limit = Math.min(this.#budget.perSession, this.#budget.total);
    if (bytes > limit) {
      throw new SessionStoreError(
        Code.ResourceExhausted,
        `the request's messages take ${bytes} bytes, more than a session may buffer ` +
          `(${limit}, --max-session-buffer-bytes and --max-buffer-bytes); send them in several requests`,
      );
    }
  }

  #checkOpen(): void {
    if (this.#closing) {
      throw new SessionStoreError(
        Code.Unavailable,
        "the server is shutting down; retry on another",
      );
    }
  }

  /**
   * The session's log, opening its file on first use; with `create`, a new file when there is
   * none. Concurrent first uses share one opening; deletions in progress are waited for.
   */
  async #logFor(sessionId: string, create?: Creation): Promise<SessionLog | undefined> {
    for (;;) {
      const deletion = this.#deleting.get(sessionId);
      if (deletion) {
        await deletion.catch(() => undefined);
        continue;
      }
      const log = this.#logs.get(sessionId);
      if (log) return log;
      let opening = this.#opening.get(sessionId);
      if (!opening) {
        opening = this.#openLog(sessionId, create).finally(() => this.#opening.delete(sessionId));
        this.#opening.set(sessionId, opening);
      }
      const opened = await opening;
      if (this.#deleting.has(sessionId)) continue;
      if (opened || !create) return opened;
    }
  }

  async #openLog(sessionId: string, create: Creation | undefined): Promise<SessionLog | undefined> {
    const context = this.#fileContext();
    const sidecars = this.#sidecars();
    let file: SessionFile | undefined;
    let labels = NO_LABELS;
    try {
      file = await SessionFile.open(context, sessionId);
      if (file) {
        labels = await sidecars.read(sessionId, file.createdAtMs);
      } else if (create) {
        this.#checkOpen();
        labels = initialLabels(create.labels);
        // Durable before the file: a crash between leaves labels without a session, which are
        // removed at the next start, never a session created without the labels it was given.
        await sidecars
          .serially(sessionId, () => sidecars.write(sessionId, create.createdAtMs, labels))
          .catch((error: unknown) => {
            throw storageFailure(
              "create",
              sessionId,
              error instanceof LabelsNotWritten ? error.cause : error,
            );
          });
        file = await SessionFile.create(context, sessionId, create.createdAtMs, create.firstSeq);
        // A file that appeared meanwhile was opened instead: the labels are not its own.
        if (file.createdAtMs !== create.createdAtMs) {
          labels = await sidecars.read(sessionId, file.createdAtMs);
        }
      }
    } catch (error) {
      if (error instanceof SessionStoreError && error.code === Code.FailedPrecondition) {
        this.#logRefusedOnce(`${sessionId}${FILE_SUFFIX}`, "refusing a session entry", error);
      } else if (error instanceof SessionStoreError && !this.#closing) {
        this.#shared.events.failed(error.code);
      }
      throw error;
    }
    if (!file) return undefined;
    const log = new SessionLog(
      {
        policy: this.#shared.policy,
        budget: this.#budget,
        log: this.#shared.log,
        events: this.#shared.events,
        notify: (id, change) => this.#onLogChanged(id, change),
        detach: (detached, error) => this.#detach(detached, error),
      },
      file,
      labels,
    );
    this.#logs.set(sessionId, log);
    this.#ids.add(sessionId);
    this.#refused.delete(sessionId);
    this.#directoryCatalog().set(catalogEntry(log));
    return log;
  }

  /** A log's acknowledged messages changed: tell its watchers, and listings of its new update time. */
  #onLogChanged(sessionId: string, change: SessionChange): void {
    const log = this.#logs.get(sessionId);
    if (log) this.#directoryCatalog().touch(sessionId, log.meta().updatedAtMs);
    this.#subscribers.notify(sessionId, change);
  }

  /** Gives a session in use its new labels, durable by now. */
  #relabel(log: SessionLog, labels: StoredLabels): void {
    log.relabel(labels);
    if (this.#logs.get(log.sessionId) === log) this.#directoryCatalog().set(catalogEntry(log));
  }

  /**
   * One page of a listing by update time or labels, from the catalog. The sessions on it are
   * opened for their metadata; when that teaches the catalog something new of one (a session
   * not in use: its file was recovered, its labels were for another file of that id), the page
   * is taken again. Entries that cannot be served are skipped, and the page refilled after them.
   */
  async #listFromCatalog(query: ListQuery): Promise<SessionMeta[]> {
    const catalog = await this.#directoryCatalog().get();
    const metas: SessionMeta[] = [];
    let after = query.after;
    for (let retakes = 0; metas.length < query.limit; ) {
      const page = { ...query, after, limit: query.limit - metas.length };
      const ids = catalog.list(page);
      if (ids.length === 0) break;
      const lastId = ids.at(-1) as string;
      const lastBefore = catalog.get(lastId) as CatalogEntry;
      const opened = await Promise.all(
        ids.map((id) =>
          this.#logFor(id).then(
            (log) => log?.meta(),
            (error: unknown) => this.#skipInList(error),
          ),
        ),
      );
      const taken = catalog.list(page);
      if (retakes < 3 && (taken.length !== ids.length || taken.some((id, i) => id !== ids[i]))) {
        retakes++;
        continue;
      }
      for (const meta of opened) if (meta) metas.push(meta);
      const last = catalog.get(lastId) ?? lastBefore;
      after = { sessionId: lastId, updatedAtMs: last.updatedAtMs };
    }
    return metas;
  }

  /** What the catalog must say of a session: see CatalogSource.known. */
  #catalogEntryOf(sessionId: string): CatalogEntry | "gone" | undefined {
    if (!this.#ids.has(sessionId) || this.#deleting.has(sessionId)) return "gone";
    const log = this.#logs.get(sessionId);
    return log && catalogEntry(log);
  }

  async #deleteNow(sessionId: string): Promise<boolean> {
    // The log ends at once: its undecided requests (and their streams) fail before anything
    // more is admitted. A first use opening the session meanwhile is waited for.
    let log = this.#logs.get(sessionId);
    let discarding = log?.discard();
    if (!log) {
      await this.#opening.get(sessionId)?.catch(() => undefined);
      log = this.#logs.get(sessionId);
      discarding = log?.discard();
    }
    this.#logs.delete(sessionId);
    const tell = await discarding;
    let existed: boolean;
    try {
      existed = log ? await log.file.remove() : await this.#removeUnopened(sessionId);
      if (existed) await this.#fileContext().syncDirectory();
    } catch (error) {
      tell?.("maybe stored");
      const failure =
        error instanceof SessionStoreError ? error : storageFailure("delete", sessionId, error);
      if (failure.code !== Code.FailedPrecondition) this.#shared.events.failed(failure.code);
      throw failure;
    }
    tell?.("nothing stored");
    this.#ids.delete(sessionId);
    this.#directoryCatalog().remove(sessionId);
    // After the file: a crash between leaves labels without a session, removed at the next
    // start, and never applied to a later session of that id (see LabelFiles).
    await this.#sidecars()
      .serially(sessionId, () => this.#sidecars().remove(sessionId))
      .catch((error: unknown) =>
        this.#shared.log.warn(
          { sessionId, err: error },
          "could not remove the labels of a deleted session; they are removed at the next start",
        ),
      );
    this.#subscribers.notify(sessionId, { kind: "deleted" });
    return existed;
  }

  /** Deletes a session's file that no log has open, refusing entries the server does not use. */
  async #removeUnopened(sessionId: string): Promise<boolean> {
    const context = this.#fileContext();
    const path = sessionPath(context.directory, sessionId);
    let stat: Awaited<ReturnType<typeof lstat>>;
    try {
      stat = await lstat(path);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    if (!stat.isFile()) {
      throw new SessionStoreError(
        Code.FailedPrecondition,
        `the entry of session ${sessionId} in the data directory is not a regular file, so the server leaves it alone; an operator must remove it`,
      );
    }
    await unlink(path);
    await removeSidecars(context, sessionId);
    return true;
  }

  async #existingLog(sessionId: string): Promise<SessionLog> {
    const log = await this.#logFor(sessionId);
    if (!log) throw sessionNotFound(sessionId);
    return log;
  }

  /** Whether the directory has an entry (of any kind) for the session, or one is being made. */
  async #hasEntry(sessionId: string): Promise<boolean> {
    if (this.#logs.has(sessionId) || this.#opening.has(sessionId)) return true;
    return lstat(sessionPath(this.#fileContext().directory, sessionId)).then(
      () => true,
      (error: unknown) => {
        if (isNotFound(error)) return false;
        throw error;
      },
    );
  }

  /**
   * The file of a session in use changed outside the server: forget the log (the file is read
   * anew at the next call), keep its acknowledged messages that were not written in a rescue
   * file, and tell its watchers.
   */
  #detach(log: SessionLog, error: FileChangedError): void {
    const { sessionId } = log;
    if (this.#logs.get(sessionId) !== log) return;
    this.#logs.delete(sessionId);
    const context = this.#fileContext();
    log.file.forgetHandles();
    log.file.abandonJournal();
    const kept = log.detach(error.what);
    this.#shared.log.error(
      {
        sessionId,
        file: sessionPath(context.directory, sessionId),
        unwritten: kept.messages.length,
      },
      `the session file ${error.what} outside the server; it is read anew at the next call`,
    );
    if (kept.messages.length > 0)
      void this.#rescue(sessionId, kept.firstSeq, kept.messages, error.what);
    this.#subscribers.notify(sessionId, { kind: "replaced" });
  }

  /** Writes acknowledged messages that lost their file to `.sessionstore/rescued/`. */
  async #rescue(
    sessionId: string,
    firstSeq: number,
    messages: Buffer[],
    reason: string,
  ): Promise<void> {
    const context = this.#fileContext();
    const { log } = this.#shared;
    try {
      const directory = await ownDirectory(join(context.directory, OWN_DIRECTORY), "rescued");
      const path = join(directory, `${sessionId}.${Date.now()}.jsonl`);
      const handle = await open(path, "wx");
      try {
        const header = JSON.stringify({ session_id: sessionId, first_seq: firstSeq, reason });
        await writeFully(handle, joinLines([Buffer.from(header, "utf8"), ...messages]), 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      log.error(
        { sessionId, file: path, firstSeq, messages: messages.length },
        "kept acknowledged messages that could not be written to the session's changed file",
      );
    } catch (error) {
      log.fatal(
        { sessionId, err: error, firstSeq, messages: messages.length },
        "could not keep acknowledged messages of a session whose file changed outside the server",
      );
    }
  }

  /**
   * A directory entry was created, renamed or removed, or a file's content changed: keep the
   * ids, the open logs and the catalog current.
   */
  #onEntryChanged(name: string, event: EntryEvent): void {
    if (!name.endsWith(FILE_SUFFIX)) return;
    const sessionId = name.slice(0, -FILE_SUFFIX.length);
    if (!isValidSessionId(sessionId) || this.#closing) return;
    if (event === "change") {
      // The server's own writes cause most of these: gathered, and looked at once.
      this.#changed.add(sessionId);
      this.#changeCheck ??= setTimeout(() => this.#checkChanged(), CHANGE_CHECK_DELAY_MS).unref();
      return;
    }
    this.#warnIfFails(sessionId, this.#refreshEntry(sessionId));
  }

  /**
   * Session files whose content changed: one in use that someone else appended to or cut is read
   * anew (at the next call), and the catalog learns the update time of one not in use.
   */
  #checkChanged(): void {
    this.#changeCheck = undefined;
    for (const sessionId of this.#changed) {
      if (this.#opening.has(sessionId) || this.#deleting.has(sessionId)) continue;
      const log = this.#logs.get(sessionId);
      const checked = (log ? log.checkFile() : Promise.resolve()).then(() => {
        if (!this.#logs.has(sessionId)) return this.#directoryCatalog().refresh(sessionId);
      });
      this.#warnIfFails(sessionId, checked);
    }
    this.#changed.clear();
  }

  #warnIfFails(sessionId: string, check: Promise<void>): void {
    check.catch((error: unknown) =>
      this.#shared.log.warn({ sessionId, err: error }, "could not check a changed session entry"),
    );
  }

  async #refreshEntry(sessionId: string): Promise<void> {
    // The server's own creations and deletions keep the ids current themselves.
    if (this.#opening.has(sessionId) || this.#deleting.has(sessionId)) return;
    const context = this.#fileContext();
    const stat = await lstat(sessionPath(context.directory, sessionId)).catch(() => undefined);
    const log = this.#logs.get(sessionId);
    if (stat?.isFile()) {
      this.#ids.add(sessionId);
      if (log && stat.ino !== log.file.inode && !log.file.replacing)
        this.#detach(log, new FileChangedError(sessionId, "was replaced"));
    } else {
      this.#ids.delete(sessionId);
      if (log) {
        this.#detach(
          log,
          new FileChangedError(
            sessionId,
            stat ? "was replaced by an entry that is not a regular file" : "was deleted",
          ),
        );
      }
    }
    await this.#directoryCatalog().refresh(sessionId);
    // Watchers of a session that did not exist learn that it may now.
    this.#subscribers.notify(sessionId, { kind: "appended" });
  }

  /** The ids of the regular `<id>.jsonl` files in the directory; other entries are logged once. */
  async #readIds(): Promise<SortedIds> {
    const { directory } = this.#fileContext();
    const ids: string[] = [];
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const { name } = entry;
      if (!name.endsWith(FILE_SUFFIX) || name.startsWith(".")) continue;
      const id = name.slice(0, -FILE_SUFFIX.length);
      if (!isValidSessionId(id)) {
        this.#logRefusedOnce(name, "ignoring a file whose name is not a valid session id");
      } else if (entry.isSymbolicLink()) {
        this.#logRefusedOnce(
          name,
          "ignoring a session entry that is a symbolic link, which the server does not follow",
        );
      } else if (!entry.isFile()) {
        this.#logRefusedOnce(name, "ignoring a session entry that is not a regular file");
      } else {
        ids.push(id);
      }
    }
    return new SortedIds(ids);
  }

  /**
   * An entry the server will not use (a link, a directory: logged once when refused) is left
   * out of List, and the page goes on; a storage failure fails the page (safe to retry).
   */
  #skipInList(error: unknown): undefined {
    if (error instanceof SessionStoreError && error.code === Code.FailedPrecondition)
      return undefined;
    throw error;
  }

  #logRefusedOnce(name: string, message: string, error?: unknown): void {
    if (this.#refused.has(name)) return;
    this.#refused.add(name);
    this.#shared.log.warn({ file: name, err: error }, message);
  }

  #sidecars(): LabelFiles {
    if (!this.#labelFiles) throw new Error("the storage is not open");
    return this.#labelFiles;
  }

  #directoryCatalog(): DirectoryCatalog {
    if (!this.#catalog) throw new Error("the storage is not open");
    return this.#catalog;
  }

  #fileContext(): FileContext {
    if (!this.#context) throw new Error("the storage is not open");
    return this.#context;
  }
}

/** What a session created with `labels` starts with: revision 1 when it has any. */
function initialLabels(labels: Labels | undefined): StoredLabels {
  if (!labels || Object.keys(labels).length === 0) return NO_LABELS;
  return { labels: sortedLabels(labels), revision: 1 };
}

function catalogEntry(log: SessionLog): CatalogEntry {
  const { sessionId, updatedAtMs, labels } = log.meta();
  return { sessionId, updatedAtMs, labels };
}

function isDeferred(result: Appended | Deferred): result is Deferred {
  return "wait" in result;
}

function asStoreError(error: unknown): SessionStoreError {
  return error instanceof SessionStoreError
    ? error
    : new SessionStoreError(Code.Unavailable, "storage failed; the server log has the details");
}

/**
 * `parent/name`, created if missing (durably: the parent is fsynced), refusing anything but a
 * real directory: a link there would lead out of the data directory.
 */
export async function ownDirectory(parent: string, name: string): Promise<string> {
  const path = join(parent, name);
  const created = await mkdir(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") return false;
      throw error;
    },
  );
  if (created) await syncDirectory(parent);
  const stat = await lstat(path);
  if (!stat.isDirectory()) {
    throw new Error(`${path} must be a directory of the server's own, not a link or a file`);
  }
  return path;
}
