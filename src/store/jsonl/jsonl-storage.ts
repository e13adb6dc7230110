import { mkdir, readdir, unlink } from "node:fs/promises";
import type { Logger } from "pino";
import { isValidSessionId } from "../../sessions/validation.js";
import type { ListQuery, SessionStorage, StoredSessionMeta, WriteOptions } from "../storage.js";
import { DirectoryLock } from "./directory-lock.js";
import { coalesce, isNotFound, storageFailure, syncDirectory, syncFileSystem } from "./file-io.js";
import { HandlePool } from "./handle-pool.js";
import { type FileContext, SessionFile, sessionPath } from "./session-file.js";
import { SortedIds } from "./sorted-ids.js";

const FILE_SUFFIX = ".jsonl";

export interface JsonlStorageOptions {
  directory: string;
  /** Idle file handles kept open; more sessions than this still work. */
  maxOpenFiles: number;
  log: Logger;
}

/**
 * The embedded default backend: one motosan-compatible JSONL file per session,
 * `<directory>/<session_id>.jsonl`. Session ids are validated before they reach this layer, so
 * they can never name a path outside the directory.
 */
export class JsonlFileStorage implements SessionStorage {
  private readonly context: FileContext;
  private index = new SortedIds([]);
  /** Sessions opened so far (a file is recovered once, on first use), by id. */
  private readonly files = new Map<string, Promise<SessionFile | undefined>>();
  private lock: DirectoryLock | undefined;

  constructor(private readonly options: JsonlStorageOptions) {
    this.context = {
      directory: options.directory,
      pool: new HandlePool(options.maxOpenFiles),
      log: options.log,
      syncDirectory: coalesce(() => syncDirectory(options.directory)),
      stats: { writes: 0, messages: 0, bytes: 0, fileSyncs: 0 },
    };
  }

  async open(): Promise<void> {
    await mkdir(this.options.directory, { recursive: true });
    this.lock = await DirectoryLock.acquire(this.options.directory);
    // What an earlier run wrote but had not fsynced (it was killed) becomes durable here, so the
    // durable_count of every existing file is true from the start.
    await syncFileSystem(this.options.directory);
    const ids: string[] = [];
    for (const name of await readdir(this.options.directory)) {
      if (!name.endsWith(FILE_SUFFIX) || name.startsWith(".")) continue;
      const id = name.slice(0, -FILE_SUFFIX.length);
      if (isValidSessionId(id)) ids.push(id);
      else
        this.options.log.warn(
          { file: name },
          "ignoring a file whose name is not a valid session id",
        );
    }
    this.index = new SortedIds(ids);
    this.options.log.info(
      { directory: this.options.directory, sessions: ids.length },
      "opened the data directory",
    );
  }

  async close(): Promise<void> {
    await this.context.pool.closeAll();
    await this.lock?.release();
    this.options.log.info({ ...this.context.stats }, "closed the data directory");
  }

  async meta(sessionId: string): Promise<StoredSessionMeta | undefined> {
    return (await this.file(sessionId))?.meta();
  }

  async write(
    sessionId: string,
    firstSeq: number,
    messages: readonly string[],
    options: WriteOptions,
  ): Promise<void> {
    const file = await this.file(sessionId);
    if (file) return file.append(firstSeq, messages, options.sync);
    if (messages.length === 0) return;
    const created = SessionFile.create(
      this.context,
      sessionId,
      options.createdAtMs,
      messages,
      options.sync,
    );
    this.files.set(sessionId, created);
    try {
      await created;
    } catch (error) {
      this.files.delete(sessionId);
      throw error;
    }
    this.index.add(sessionId);
  }

  async *read(sessionId: string, fromSeq: number, count: number): AsyncIterable<string[]> {
    const file = await this.file(sessionId);
    if (file) yield* file.read(fromSeq, count);
  }

  async list(query: ListQuery): Promise<StoredSessionMeta[]> {
    const ids = this.index.page(query.prefix, query.after, query.limit);
    const metas = await Promise.all(ids.map((id) => this.meta(id)));
    return metas.filter((meta) => meta !== undefined);
  }

  async delete(sessionId: string): Promise<boolean> {
    const path = sessionPath(this.options.directory, sessionId);
    this.files.delete(sessionId);
    this.context.pool.discard(path);
    try {
      await unlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw storageFailure("delete", sessionId, error);
      this.index.delete(sessionId);
      return false;
    }
    this.index.delete(sessionId);
    await this.context.syncDirectory();
    return true;
  }

  private file(sessionId: string): Promise<SessionFile | undefined> {
    let file = this.files.get(sessionId);
    if (!file) {
      if (!this.index.has(sessionId)) return Promise.resolve(undefined);
      file = SessionFile.open(this.context, sessionId);
      this.files.set(sessionId, file);
      // A failed open is retried on next use rather than remembered.
      file.catch(() => this.files.delete(sessionId));
    }
    return file;
  }
}
