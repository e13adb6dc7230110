import pg from "pg";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../../errors.js";
import { bufferedSize } from "../buffer-budget.js";
import { pagesOf, resolveRange } from "../read-range.js";
import type {
  Appended,
  Appending,
  AppendOptions,
  FailedOutcome,
  FlushReport,
  ListQuery,
  MessagePage,
  ReadRange,
  SessionMeta,
  SessionStorage,
  StorageBackend,
} from "../storage.js";
import {
  type StorageEvents,
  type StorageLevels,
  secondsSince,
  UNOBSERVED,
} from "../storage-events.js";
import { Subscribers } from "../subscribers.js";
import { AppendBatcher } from "./append-batches.js";
import { databaseFailure } from "./database-errors.js";
import { migrate } from "./migrations.js";
import { CHANNEL, ChangeListener } from "./notifications.js";

export interface PostgresStorageOptions {
  /** libpq connection URL. */
  databaseUrl: string;
  /** Connections to the database, besides the one that listens for changes. */
  poolSize: number;
  /** The longest a call waits for a connection or a statement before it fails with UNAVAILABLE. */
  timeoutMs: number;
  /** How soon messages appended without a synchronous commit are made durable, at the latest. */
  flushIntervalMs: number;
  /** Message bytes queued for the next transaction; past them, appends wait. */
  maxBufferBytes: number;
  log: Logger;
  /** Told of every append transaction, synchronous commit and database failure (metrics, traces). */
  events?: StorageEvents;
}

/** Rows a read fetches per query (served in pages of about a megabyte). */
const ROWS_PER_QUERY = 4096;
/** How often an unreachable database is probed. */
const PROBE_INTERVAL_MS = 500;

interface SessionRow {
  session_id: string;
  length: string;
  durable_length: string;
  created_at_ms: string;
  updated_at_ms: string;
  agent_loop_version: string;
}

/**
 * The shared backend: sessions in PostgreSQL, for many stateless replicas behind a load
 * balancer. The database decides each session's order (see AppendBatcher); every replica hears
 * every change through LISTEN/NOTIFY. durable_count counts the messages whose commit is known
 * to have reached disk: all of them after a `sync` request or a Flush, and, for buffered
 * appends committed with synchronous_commit=off, once the next interval flush (a synchronous
 * commit) has covered them.
 */
export class PostgresStorage implements StorageBackend {
  readonly #options: PostgresStorageOptions;
  readonly #events: StorageEvents;
  readonly #pool: pg.Pool;
  readonly #batcher: AppendBatcher;
  readonly #subscribers = new Subscribers();
  readonly #listener: ChangeListener;
  /** Sessions this process appended to without a synchronous commit since the last flush. */
  #unflushed = new Set<string>();
  /** One view per tenant, made on first use. */
  readonly #views = new Map<string, SessionStorage>();
  #flushTimer: NodeJS.Timeout | undefined;
  #serving = true;
  readonly #healthListeners = new Set<(serving: boolean) => void>();
  #probe: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(options: PostgresStorageOptions) {
    this.#options = options;
    this.#events = options.events ?? UNOBSERVED;
    const connection: pg.ClientConfig = {
      connectionString: options.databaseUrl,
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
      keepAlive: true,
      application_name: "sessionstore",
    };
    this.#pool = new pg.Pool({ ...connection, max: options.poolSize });
    // An idle connection the database closed: the pool drops it; the next call gets another.
    this.#pool.on("error", (error) => this.#onDatabaseFailure(error));
    this.#batcher = new AppendBatcher(
      this.#pool,
      // Transactions side by side, leaving connections for reads.
      Math.max(1, Math.floor(options.poolSize / 2)),
      options.maxBufferBytes,
      (tenant, sessionId) => this.#unflushed.add(key(tenant, sessionId)),
      (error) => this.#onDatabaseFailure(error),
      this.#events,
    );
    this.#listener = new ChangeListener(
      connection,
      (tenant, sessionId, change) => {
        this.#subscribers.notify(key(tenant, sessionId), change);
      },
      () => this.#subscribers.notifyAll({ kind: "appended" }),
      options.log,
    );
  }

  /** Brings a database's schema up to date; resolves to the migrations applied. */
  static async migrate(databaseUrl: string, log: Logger): Promise<number[]> {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      return await migrate(pool, log);
    } finally {
      await pool.end();
    }
  }

  async open(): Promise<void> {
    await migrate(this.#pool, this.#options.log);
    await this.#listener.start();
    this.#flushTimer = setInterval(() => {
      void this.#flushUnflushed().catch(() => undefined);
    }, this.#options.flushIntervalMs).unref();
    this.#options.log.info({ poolSize: this.#options.poolSize }, "connected to PostgreSQL");
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#flushTimer);
    clearTimeout(this.#probe);
    await this.#batcher.drain();
    try {
      await this.#flushUnflushed();
      this.#options.log.info(
        "closed the database; every acknowledged message is committed durably",
      );
    } catch (error) {
      this.#options.log.error(
        { err: error, sessions: this.#unflushed.size },
        "could not make the last buffered appends durable before shutdown (they are committed)",
      );
    }
    await this.#listener.close();
    await this.#pool.end();
  }

  tenant(tenant: string): SessionStorage {
    let view = this.#views.get(tenant);
    if (!view) {
      view = {
        append: (sessionId, messages, options) =>
          this.appendAs(tenant, sessionId, messages, options),
        read: (sessionId, range) => this.readAs(tenant, sessionId, range),
        meta: (sessionId) => this.metaAs(tenant, sessionId),
        list: (query) => this.listAs(tenant, query),
        delete: (sessionId) => this.deleteAs(tenant, sessionId),
        flush: (sessionId) => this.flushAs(tenant, sessionId),
        subscribe: (sessionId, listener) => this.#subscribers.add(key(tenant, sessionId), listener),
        // TEMPORARY (issue 14 in progress): replaced by the backend's own implementation.
        setLabels: () => unfinished("SetLabels"),
        fork: () => unfinished("Fork"),
        rewind: () => unfinished("Rewind"),
        trim: () => unfinished("Trim"),
        firstSeqSince: () => unfinished("retention"),
      };
      this.#views.set(tenant, view);
    }
    return view;
  }

  async tenants(): Promise<string[]> {
    const rows = await this.#query<{ tenant: string }>(
      "list tenants",
      "SELECT DISTINCT tenant FROM sessionstore.sessions ORDER BY tenant",
      [],
    );
    return [...new Set(["", ...rows.map((row) => row.tenant)])].sort();
  }

  /** SessionStorage.append for `tenant` (and so on below: what `tenant()` views call). */
  appendAs(
    tenant: string,
    sessionId: string,
    messages: readonly string[],
    options: AppendOptions,
  ): Appending {
    const bytes = bufferedSize(messages);
    if (!this.#batcher.hasRoom(bytes)) {
      return this.#appendWhenRoom(tenant, sessionId, messages, options, bytes);
    }
    return this.#enqueue(tenant, sessionId, messages, options, bytes);
  }

  async *readAs(tenant: string, sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    const meta = await this.metaAs(tenant, sessionId);
    if (!meta) return;
    const { from, to } = resolveRange(range, meta.messageCount);
    for (let seq = from; seq < to; ) {
      const rows = await this.#rows(
        "read",
        `SELECT seq, body FROM sessionstore.messages
         WHERE session_id = $1 AND tenant = $2 AND seq >= $3 AND seq < $4 ORDER BY seq LIMIT $5`,
        [sessionId, tenant, seq, to, ROWS_PER_QUERY],
      );
      const messages: string[] = [];
      for (const [rowSeq, body] of rows as [string, string][]) {
        if (Number(rowSeq) !== seq + messages.length) break;
        messages.push(body);
      }
      if (messages.length === 0) {
        // The session shrank under the read only if it was deleted; a gap otherwise is damage.
        if (!(await this.metaAs(tenant, sessionId))) return;
        this.#events.failed(Code.DataLoss);
        throw new SessionStoreError(
          Code.DataLoss,
          `session ${sessionId} has no stored message at seq ${seq} although its length is ${meta.messageCount}; ` +
            "an operator must restore it from a backup",
        );
      }
      yield* pagesOf(messages, seq);
      seq += messages.length;
    }
  }

  async metaAs(tenant: string, sessionId: string): Promise<SessionMeta | undefined> {
    const rows = await this.#query<SessionRow>(
      "read",
      "SELECT * FROM sessionstore.sessions WHERE session_id = $1 AND tenant = $2",
      [sessionId, tenant],
    );
    return rows[0] && toMeta(rows[0]);
  }

  async listAs(tenant: string, query: ListQuery): Promise<SessionMeta[]> {
    // The prefix as a range of the index on (tenant, session_id): ids are ASCII, compared as bytes.
    const rows = await this.#query<SessionRow>(
      "list sessions",
      `SELECT * FROM sessionstore.sessions
       WHERE tenant = $1 AND session_id > $2 AND session_id >= $3 AND ($4::text IS NULL OR session_id < $4)
       ORDER BY session_id LIMIT $5`,
      [tenant, query.after, query.prefix, prefixEnd(query.prefix), query.limit],
    );
    return rows.map(toMeta);
  }

  async deleteAs(tenant: string, sessionId: string): Promise<boolean> {
    this.#checkOpen();
    let existed = false;
    await this.#transaction("delete", async (client) => {
      await client.query(
        "DELETE FROM sessionstore.messages WHERE session_id = $1 AND tenant = $2",
        [sessionId, tenant],
      );
      const deleted = await client.query(
        "DELETE FROM sessionstore.sessions WHERE session_id = $1 AND tenant = $2",
        [sessionId, tenant],
      );
      existed = (deleted.rowCount ?? 0) > 0;
      await client.query("SELECT pg_notify($1, $2)", [
        CHANNEL,
        JSON.stringify({ k: "d", t: tenant, s: sessionId }),
      ]);
    });
    this.#unflushed.delete(key(tenant, sessionId));
    // This replica's watchers hear it now; every replica's (again) through the notification.
    this.#subscribers.notify(key(tenant, sessionId), { kind: "deleted" });
    return existed;
  }

  async flushAs(tenant: string, sessionId?: string): Promise<FlushReport> {
    if (sessionId !== undefined) {
      return { flushed: await this.#makeDurable(tenant, [sessionId]), failures: [] };
    }
    return { flushed: await this.#flushUnflushed(tenant), failures: [] };
  }

  /** The queued appends are the buffer; no session's state is kept between calls. */
  levels(): StorageLevels {
    return { bufferedBytes: this.#batcher.queuedBytes, openSessions: 0 };
  }

  watchHealth(listener: (serving: boolean) => void): () => void {
    this.#healthListeners.add(listener);
    return () => this.#healthListeners.delete(listener);
  }

  #enqueue(
    tenant: string,
    sessionId: string,
    messages: readonly string[],
    options: AppendOptions,
    bytes: number,
  ): Appended {
    this.#checkOpen();
    options.chain?.checkOpen();
    return {
      ack: this.#batcher.enqueue({
        tenant,
        sessionId,
        messages,
        expectedSeq: options.expectedSeq,
        sync: options.sync,
        chain: options.chain,
        createdAtMs: options.createdAtMs,
        bytes,
      }),
    };
  }

  async #appendWhenRoom(
    tenant: string,
    sessionId: string,
    messages: readonly string[],
    options: AppendOptions,
    bytes: number,
  ): Promise<Appended> {
    while (!this.#batcher.hasRoom(bytes)) {
      this.#checkOpen();
      await this.#batcher.roomChanged();
    }
    return this.#enqueue(tenant, sessionId, messages, options, bytes);
  }

  /**
   * Makes what this process appended without a synchronous commit durable: of `tenant`, or of
   * every tenant (the interval flush and shutdown).
   */
  async #flushUnflushed(tenant?: string): Promise<number> {
    const byTenant = new Map<string, string[]>();
    for (const entry of this.#unflushed) {
      const slash = entry.indexOf("/");
      const owner = entry.slice(0, slash);
      if (tenant !== undefined && owner !== tenant) continue;
      this.#unflushed.delete(entry);
      byTenant.set(owner, [...(byTenant.get(owner) ?? []), entry.slice(slash + 1)]);
    }
    let flushed = 0;
    for (const [owner, sessionIds] of byTenant) {
      try {
        flushed += await this.#makeDurable(owner, sessionIds);
      } catch (error) {
        for (const sessionId of sessionIds) this.#unflushed.add(key(owner, sessionId));
        throw error;
      }
    }
    return flushed;
  }

  /**
   * A synchronous commit that counts the sessions' messages durable: the WAL is flushed up to it,
   * so every earlier commit, of any replica, is on disk too. Resolves to the messages it covered.
   */
  async #makeDurable(tenant: string, sessionIds: string[]): Promise<number> {
    let flushed = 0;
    const started = performance.now();
    await this.#transaction("flush", async (client) => {
      await client.query("SET LOCAL synchronous_commit = on");
      const result = await client.query<{ flushed: string }>(
        `WITH before AS (
           SELECT session_id, length - durable_length AS pending FROM sessionstore.sessions
           WHERE tenant = $1 AND session_id = ANY($2) AND durable_length < length FOR UPDATE)
         UPDATE sessionstore.sessions s SET durable_length = s.length FROM before
         WHERE s.tenant = $1 AND s.session_id = before.session_id
         RETURNING before.pending AS flushed`,
        [tenant, sessionIds],
      );
      for (const row of result.rows) flushed += Number(row.flushed);
    });
    this.#events.synced(secondsSince(started));
    return flushed;
  }

  async #transaction(
    action: string,
    work: (client: pg.PoolClient) => Promise<void>,
  ): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#failure(action, error);
    }
    try {
      await client.query("BEGIN");
      await work(client);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      if (error instanceof SessionStoreError) throw error;
      throw this.#failure(action, error, "maybe stored");
    } finally {
      client.release();
    }
  }

  /** Rows as arrays (no object per row), for reads of many rows. */
  async #rows(action: string, text: string, values: unknown[]): Promise<unknown[][]> {
    try {
      return (await this.#pool.query({ text, values, rowMode: "array" })).rows;
    } catch (error) {
      throw this.#failure(action, error);
    }
  }

  async #query<Row extends pg.QueryResultRow>(
    action: string,
    text: string,
    values: unknown[],
  ): Promise<Row[]> {
    try {
      return (await this.#pool.query<Row>(text, values)).rows;
    } catch (error) {
      throw this.#failure(action, error);
    }
  }

  /** A failed database call as the caller hears it, counted, and checked for an outage. */
  #failure(action: string, error: unknown, outcome?: FailedOutcome): SessionStoreError {
    this.#onDatabaseFailure(error);
    this.#events.failed(Code.Unavailable);
    return databaseFailure(action, error, outcome);
  }

  #checkOpen(): void {
    if (this.#closing) {
      throw new SessionStoreError(
        Code.Unavailable,
        "the server is shutting down; retry on another",
      );
    }
  }

  /** The database seems unreachable: report NOT_SERVING and probe until it answers again. */
  #onDatabaseFailure(error: unknown): void {
    if (!this.#serving || this.#closing) return;
    if (
      typeof (error as { code?: unknown }).code === "string" &&
      /^[0-9A-Z]{5}$/.test((error as { code: string }).code)
    ) {
      // The server answered: it is up (a statement failed, or it is shutting down: 57P01).
      if (!(error as { code: string }).code.startsWith("57")) return;
    }
    this.#setServing(false);
    this.#options.log.warn(
      { err: error },
      "the database is unreachable; health is NOT_SERVING until it answers",
    );
    const probe = () => {
      this.#pool.query("SELECT 1").then(
        () => {
          this.#setServing(true);
          this.#options.log.info("the database answers again; health is SERVING");
        },
        () => {
          if (!this.#closing) this.#probe = setTimeout(probe, PROBE_INTERVAL_MS).unref();
        },
      );
    };
    this.#probe = setTimeout(probe, PROBE_INTERVAL_MS).unref();
  }

  #setServing(serving: boolean): void {
    if (this.#serving === serving) return;
    this.#serving = serving;
    for (const listener of this.#healthListeners) listener(serving);
  }
}

/** The first string after every string that starts with `prefix`, or null for "". */
function prefixEnd(prefix: string): string | null {
  if (prefix === "") return null;
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** A session's key among all tenants' (tenants never hold a "/"). */
async function unfinished(what: string): Promise<never> {
  throw new SessionStoreError(Code.Unimplemented, `${what}: not yet on this backend`);
}

function key(tenant: string, sessionId: string): string {
  return `${tenant}/${sessionId}`;
}

function toMeta(row: SessionRow): SessionMeta {
  return {
    sessionId: row.session_id,
    createdAtMs: Number(row.created_at_ms),
    agentLoopVersion: row.agent_loop_version,
    messageCount: Number(row.length),
    durableCount: Number(row.durable_length),
    updatedAtMs: Number(row.updated_at_ms),
    labels: {},
    labelsRevision: 0,
    parent: undefined,
    firstSeq: 0,
  };
}
