import { mkdir, readdir, realpath } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../../errors.js";
import type { Labels } from "../../labels.js";
import { isValidTenant } from "../../tenant.js";
import { BufferBudget } from "../buffer-budget.js";
import type {
  Appending,
  AppendOptions,
  DeleteGuard,
  FlushReport,
  ListQuery,
  MessagePage,
  ReadRange,
  Rewound,
  SessionChange,
  SessionMeta,
  SessionStorage,
  StorageBackend,
  Trimmed,
} from "../storage.js";
import { type StorageEvents, type StorageLevels, UNOBSERVED } from "../storage-events.js";
import { DirectoryLock } from "./directory-lock.js";
import { describeCause, OUT_OF_SPACE, syncFileSystem } from "./file-io.js";
import { HandlePool } from "./handle-pool.js";
import { Journal, type JournalOptions, type JournalStats, journalSegments } from "./journal.js";
import { replayLeftJournal } from "./journal-replay.js";
import type { WriteStats } from "./session-file.js";
import type { FlushPolicy } from "./session-log.js";
import {
  OWN_DIRECTORY,
  ownDirectory,
  type SharedFiles,
  TENANTS_DIRECTORY,
  TenantDirectory,
} from "./tenant-directory.js";

export interface JsonlStorageOptions extends FlushPolicy {
  directory: string;
  /** Idle file handles kept open; more sessions than this still work. */
  maxOpenFiles: number;
  /** Acknowledged messages not yet written, per session and in all; past them, appends wait. */
  maxSessionBufferBytes: number;
  maxBufferBytes: number;
  log: Logger;
  /** Told of every write, fsync and storage failure (metrics, traces). */
  events?: StorageEvents;
  /** The journal's segment size and checkpoint interval (tests shrink them). */
  journal?: JournalOptions;
}

/**
 * The embedded default backend: one motosan-compatible JSONL file per session. Without tenants
 * (a server without authentication) the sessions are `<data-dir>/<session_id>.jsonl`; each tenant
 * has a directory of its own, `<data-dir>/tenants/<tenant>/`, laid out the same way (see
 * TenantDirectory). One process owns a data directory: the lock says so.
 */
export class JsonlFileStorage implements StorageBackend {
  readonly #options: JsonlStorageOptions;
  readonly #budget: BufferBudget;
  readonly #tenants = new Map<string, TenantSessions>();
  readonly #stats: WriteStats = { writes: 0, messages: 0, bytes: 0, fileSyncs: 0 };
  #shared: SharedFiles | undefined;
  #root = "";
  #lock: DirectoryLock | undefined;
  #journal: Journal | undefined;
  #closing = false;

  constructor(options: JsonlStorageOptions) {
    this.#options = options;
    this.#budget = new BufferBudget(options.maxSessionBufferBytes, options.maxBufferBytes);
  }

  async open(): Promise<void> {
    const { log } = this.#options;
    await mkdir(this.#options.directory, { recursive: true });
    this.#root = await realpath(this.#options.directory);
    this.#lock = await DirectoryLock.acquire(this.#root);
    const journalDirectory = await ownDirectory(
      await ownDirectory(this.#root, OWN_DIRECTORY),
      "journal",
    );
    if ((await journalSegments(journalDirectory)).length > 0) {
      log.info("replaying the journal an earlier run left");
      log.info(await replayLeftJournal(this.#root, log), "replayed the journal");
    }
    // What an earlier run wrote but had not fsynced (it was killed) becomes durable here, so the
    // durable_count of every file not changed since is true from the start.
    const syncStartedMs = Date.now();
    await syncFileSystem(this.#root);
    const journal = await Journal.start(journalDirectory, log, this.#options.journal);
    this.#journal = journal;
    this.#shared = {
      policy: this.#options,
      pool: new HandlePool(this.#options.maxOpenFiles),
      budget: this.#budget,
      log,
      // A margin for file systems whose change times lag the clock by a tick.
      syncedBeforeMs: syncStartedMs - 50,
      stats: this.#stats,
      events: this.#options.events ?? UNOBSERVED,
      closing: () => this.#closing,
      writeSoonEverywhere: () => {
        for (const tenant of this.#tenants.values()) tenant.directory.writeSoon();
      },
      journalFor: (directory) => journal.forDirectory(relative(this.#root, directory)),
    };
    const root = this.#tenantSessions("");
    await root.opened; // its own error, path and all: the operator reads it

    log.info(
      { directory: this.#root, sessions: root.directory.sessionCount },
      "opened the data directory",
    );
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#budget.wakeAll(); // appends waiting for buffer room now fail with UNAVAILABLE
    let failedSessions = 0;
    for (const tenant of this.#tenants.values()) {
      await tenant.ready.catch(() => undefined);
      failedSessions += await tenant.directory.close();
    }
    const journalClosed = await this.#journal?.close().then(
      () => true,
      (error: unknown) => {
        this.#options.log.error(
          { err: error },
          "could not checkpoint the journal; it is replayed at the next start",
        );
        return false;
      },
    );
    await this.#shared?.pool.closeAll();
    await this.#lock?.release();
    this.#options.log.info(
      {
        ...this.#stats,
        journal: this.#journal?.stats,
        journalClosed,
        sessionsNotWritten: failedSessions,
      },
      failedSessions === 0
        ? "closed the data directory; every acknowledged message is written and fsynced"
        : `closed the data directory; ${failedSessions} sessions had acknowledged messages that could not be written`,
    );
  }

  tenant(tenant: string): SessionStorage {
    return this.#tenantSessions(tenant);
  }

  async tenants(): Promise<string[]> {
    const names = await readdir(join(this.#root, TENANTS_DIRECTORY)).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return [];
        throw error;
      },
    );
    return ["", ...names.filter((name) => name !== "" && isValidTenant(name)).sort()];
  }

  levels(): StorageLevels {
    let openSessions = 0;
    for (const tenant of this.#tenants.values()) openSessions += tenant.directory.openSessionCount;
    return { bufferedBytes: this.#budget.usedBytes, openSessions };
  }

  /** The counters of the writes done so far (the benchmarks read them). */
  get stats(): WriteStats {
    return this.#stats;
  }

  /** The counters of the journal's commits, fsyncs and checkpoints. */
  get journalStats(): JournalStats {
    if (!this.#journal) throw new Error("the storage is not open");
    return this.#journal.stats;
  }

  #tenantSessions(tenant: string): TenantSessions {
    let sessions = this.#tenants.get(tenant);
    if (!sessions) {
      const shared = this.#shared;
      if (!shared) throw new Error("the storage is not open");
      const root = this.#root;
      const directory = new TenantDirectory(
        shared,
        tenant === "" ? root : join(root, TENANTS_DIRECTORY, tenant),
      );
      const opened = (async () => {
        if (tenant !== "") {
          await ownDirectory(await ownDirectory(root, TENANTS_DIRECTORY), tenant);
        }
        await directory.open();
      })();
      const created = new TenantSessions(directory, opened);
      this.#tenants.set(tenant, created);
      // A tenant whose directory could not be opened (no room, say) is tried again next time.
      opened.catch((error: unknown) => {
        if (this.#tenants.get(tenant) === created) this.#tenants.delete(tenant);
        this.#options.log.error({ tenant, err: error }, "could not open a tenant's directory");
      });
      sessions = created;
    }
    return sessions;
  }
}

/**
 * A tenant's directory, opened (created, its sessions read) on first use: until then, calls
 * wait for it, in the order they were made.
 */
class TenantSessions implements SessionStorage {
  readonly ready: Promise<void>;
  #open = false;

  constructor(
    readonly directory: TenantDirectory,
    readonly opened: Promise<void>,
  ) {
    this.ready = opened.then(
      () => {
        this.#open = true;
      },
      (error: unknown) => {
        throw asStoreError(error);
      },
    );
    this.ready.catch(() => undefined);
  }

  append(sessionId: string, messages: readonly Buffer[], options: AppendOptions): Appending {
    if (this.#open) return this.directory.append(sessionId, messages, options);
    return this.ready.then(() => this.directory.append(sessionId, messages, options));
  }

  async *read(sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    await this.ready;
    yield* this.directory.read(sessionId, range);
  }

  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    await this.ready;
    return this.directory.meta(sessionId);
  }

  async list(query: ListQuery): Promise<SessionMeta[]> {
    await this.ready;
    return this.directory.list(query);
  }

  async setLabels(
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    await this.ready;
    return this.directory.setLabels(sessionId, change, expectedRevision);
  }

  async fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    await this.ready;
    return this.directory.fork(sessionId, atSeq, newSessionId, labels);
  }

  async rewind(sessionId: string, toSeq: number, expectedSeq?: number): Promise<Rewound> {
    await this.ready;
    return this.directory.rewind(sessionId, toSeq, expectedSeq);
  }

  async trim(sessionId: string, beforeSeq: number): Promise<Trimmed> {
    await this.ready;
    return this.directory.trim(sessionId, beforeSeq);
  }

  async firstSeqSince(sessionId: string, timeMs: number): Promise<number> {
    await this.ready;
    return this.directory.firstSeqSince(sessionId, timeMs);
  }

  async delete(sessionId: string, guard?: DeleteGuard): Promise<boolean> {
    await this.ready;
    return this.directory.delete(sessionId, guard);
  }

  async flush(sessionId?: string): Promise<FlushReport> {
    await this.ready;
    return this.directory.flush(sessionId);
  }

  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void {
    return this.directory.subscribe(sessionId, listener);
  }
}

/**
 * A tenant directory's failure as clients see it, without its path (the log has it): a system
 * error is a storage failure to retry; anything else, a link or a file where the directory
 * should be, needs an operator.
 */
function asStoreError(error: unknown): SessionStoreError {
  if (error instanceof SessionStoreError) return error;
  const errno = (error as NodeJS.ErrnoException).code;
  if (typeof errno === "string") {
    return new SessionStoreError(
      OUT_OF_SPACE.has(errno) ? Code.ResourceExhausted : Code.Unavailable,
      `storage failed to open your tenant's sessions (${describeCause(error)}); nothing was stored; retry later`,
      { cause: error },
    );
  }
  return new SessionStoreError(
    Code.FailedPrecondition,
    "your tenant's directory on the server is not a directory of the server's own; an operator must fix it (the server log says how)",
  );
}
