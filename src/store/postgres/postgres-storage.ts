import pg from "pg";
import type { Logger } from "pino";
import {
  Code,
  labelsRevisionMismatch,
  SessionStoreError,
  sessionExists,
  sessionNotFound,
  trimmedBefore,
} from "../../errors.js";
import { applyLabelChange, type Labels, sameLabels } from "../../labels.js";
import { bufferedSize } from "../buffer-budget.js";
import {
  checkForkPoint,
  checkRewind,
  checkTrim,
  type LogBounds,
  readStart,
} from "../log-bounds.js";
import { pagesOf, resolveRange } from "../read-range.js";
import {
  AGENT_LOOP_VERSION,
  type Appended,
  type Appending,
  type AppendOptions,
  type DeleteGuard,
  type FailedOutcome,
  type FlushReport,
  type ListQuery,
  type MessagePage,
  type ReadRange,
  type Rewound,
  type SessionMeta,
  type SessionStorage,
  type StorageBackend,
  type Trimmed,
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
import { ChangeListener } from "./notifications.js";
import { listStatement } from "./session-listing.js";
import {
  LAID_OUT_ROW,
  type LaidOutRow,
  layoutOf,
  type Piece,
  type SessionRow,
  sameLayout,
  toMeta,
} from "./session-rows.js";

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
        delete: (sessionId, guard) => this.deleteAs(tenant, sessionId, guard),
        flush: (sessionId) => this.flushAs(tenant, sessionId),
        subscribe: (sessionId, listener) => this.#subscribers.add(key(tenant, sessionId), listener),
        setLabels: (sessionId, change, expectedRevision) =>
          this.setLabelsAs(tenant, sessionId, change, expectedRevision),
        fork: (sessionId, atSeq, newSessionId, labels) =>
          this.forkAs(tenant, sessionId, atSeq, newSessionId, labels),
        rewind: (sessionId, toSeq, expectedSeq) =>
          this.rewindAs(tenant, sessionId, toSeq, expectedSeq),
        trim: (sessionId, beforeSeq) => this.trimAs(tenant, sessionId, beforeSeq),
        firstSeqSince: (sessionId, timeMs) => this.firstSeqSinceAs(tenant, sessionId, timeMs),
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
    messages: readonly Buffer[],
    options: AppendOptions,
  ): Appending {
    const bytes = bufferedSize(messages);
    if (!this.#batcher.hasRoom(bytes)) {
      return this.#appendWhenRoom(tenant, sessionId, messages, options, bytes);
    }
    return this.#enqueue(tenant, sessionId, messages, options, bytes);
  }

  /**
   * Reads piece by piece (see layoutOf), a query per piece and ROWS_PER_QUERY rows. A missing row
   * is damage unless the session changed under the read: deleted or rewound below it (the read
   * ends there), trimmed past it (OUT_OF_RANGE), or laid out anew (the read goes on from there).
   */
  async *readAs(tenant: string, sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    const row = await this.#laidOutRow(tenant, sessionId);
    if (!row) return;
    const bounds = boundsOf(row);
    const fromSeq = readStart(sessionId, range.fromSeq, bounds);
    let { from: seq, to } = resolveRange({ ...range, fromSeq }, bounds.length);
    let layout = layoutOf(row);
    while (seq < to) {
      const messages = await this.#readPiece(tenant, layout, seq, to);
      if (messages.length === 0) {
        const now = await this.#laidOutRow(tenant, sessionId);
        if (!now) return;
        const { firstSeq, length } = boundsOf(now);
        if (seq >= length) return;
        if (seq < firstSeq) throw trimmedBefore(sessionId, seq, firstSeq);
        const moved = layoutOf(now);
        if (sameLayout(moved, layout)) throw this.#missing(sessionId, seq, length);
        layout = moved;
        to = Math.min(to, length);
        continue;
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
    const { text, values } = listStatement(tenant, query);
    return (await this.#query<SessionRow>("list sessions", text, values)).map(toMeta);
  }

  /** Deletes in one statement (the guard decided in it); rows forks share stay theirs. */
  async deleteAs(tenant: string, sessionId: string, guard?: DeleteGuard): Promise<boolean> {
    this.#checkOpen();
    let deleted = false;
    await this.#transaction("delete", async (client) => {
      const result = await client.query<{ deleted: boolean }>(
        "SELECT sessionstore.delete_session($1, $2, $3) AS deleted",
        [tenant, sessionId, guard?.updatedBeforeMs ?? null],
      );
      deleted = result.rows[0]?.deleted === true;
    });
    if (!deleted) return false;
    this.#unflushed.delete(key(tenant, sessionId));
    // This replica's watchers hear it now; every replica's (again) through the notification.
    this.#subscribers.notify(key(tenant, sessionId), { kind: "deleted" });
    return true;
  }

  /** Under the session's row lock, so that replicas racing with one expected revision get one winner. */
  async setLabelsAs(
    tenant: string,
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    this.#checkOpen();
    return this.#transaction("set labels", async (client) => {
      const current = toMeta(await lockedRow(client, tenant, sessionId));
      if (expectedRevision !== undefined && expectedRevision !== current.labelsRevision) {
        throw labelsRevisionMismatch(sessionId, expectedRevision, current.labelsRevision);
      }
      const labels = applyLabelChange(current.labels, change);
      if (sameLabels(labels, current.labels)) return current;
      const updated = await client.query<SessionRow>(
        `UPDATE sessionstore.sessions SET labels = $3, labels_revision = labels_revision + 1
         WHERE tenant = $1 AND session_id = $2 RETURNING *`,
        [tenant, sessionId, JSON.stringify(labels)],
      );
      return toMeta(updated.rows[0] as SessionRow);
    });
  }

  /**
   * A row for the fork and a few pieces (the source's, cut at `atSeq`, and the source's head),
   * whatever `atSeq`; after this replica's appends to the source queued before it.
   */
  async forkAs(
    tenant: string,
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    this.#checkOpen();
    await this.#batcher.decided(tenant, sessionId);
    return this.#transaction("fork", async (client) => {
      const source = await lockedRow(client, tenant, sessionId);
      checkForkPoint(sessionId, atSeq, boundsOf(source));
      const forkLabels = applyLabelChange(toMeta(source).labels, labels);
      const forked = await client.query<{ created: boolean }>(
        "SELECT sessionstore.fork_session($1, $2, $3, $4, $5, $6, $7) AS created",
        [
          tenant,
          sessionId,
          atSeq,
          newSessionId,
          JSON.stringify(forkLabels),
          Date.now(),
          AGENT_LOOP_VERSION,
        ],
      );
      if (forked.rows[0]?.created !== true) throw sessionExists(newSessionId);
      return toMeta(await lockedRow(client, tenant, newSessionId));
    });
  }

  /**
   * After this replica's appends to the session queued before it; atomic with other replicas'
   * appends through the row lock, under which the length is checked.
   */
  async rewindAs(
    tenant: string,
    sessionId: string,
    toSeq: number,
    expectedSeq?: number,
  ): Promise<Rewound> {
    this.#checkOpen();
    await this.#batcher.decided(tenant, sessionId);
    const rewound = await this.#transaction("rewind", async (client) => {
      const bounds = boundsOf(await lockedRow(client, tenant, sessionId));
      checkRewind(sessionId, toSeq, expectedSeq, bounds);
      const dropped = await client.query<[string]>({
        text: "SELECT body FROM sessionstore.session_messages($1, $2, $3, $4) ORDER BY seq",
        values: [tenant, sessionId, toSeq, bounds.length],
        rowMode: "array",
      });
      if (dropped.rows.length !== bounds.length - toSeq) {
        throw this.#missing(sessionId, toSeq + dropped.rows.length, bounds.length);
      }
      await client.query("SELECT sessionstore.rewind_session($1, $2, $3, $4)", [
        tenant,
        sessionId,
        toSeq,
        Date.now(),
      ]);
      const meta = toMeta(await lockedRow(client, tenant, sessionId));
      return { dropped: dropped.rows.map(([body]) => Buffer.from(body, "utf8")), meta };
    });
    this.#subscribers.notify(key(tenant, sessionId), { kind: "rewound", toSeq });
    return rewound;
  }

  async trimAs(tenant: string, sessionId: string, beforeSeq: number): Promise<Trimmed> {
    this.#checkOpen();
    return this.#transaction("trim", async (client) => {
      checkTrim(sessionId, beforeSeq, boundsOf(await lockedRow(client, tenant, sessionId)));
      const result = await client.query<{ trimmed: string }>(
        "SELECT sessionstore.trim_session($1, $2, $3) AS trimmed",
        [tenant, sessionId, beforeSeq],
      );
      return {
        trimmed: Number(result.rows[0]?.trimmed ?? 0),
        meta: toMeta(await lockedRow(client, tenant, sessionId)),
      };
    });
  }

  /** By each message's append time (the time of the batch that wrote it), piece by piece. */
  async firstSeqSinceAs(tenant: string, sessionId: string, timeMs: number): Promise<number> {
    const row = await this.#laidOutRow(tenant, sessionId);
    if (!row) throw sessionNotFound(sessionId);
    for (const piece of layoutOf(row)) {
      const rows = await this.#rows(
        "read",
        `SELECT seq FROM sessionstore.messages
         WHERE session_id = $1 AND tenant = $2 AND segment = $3 AND seq >= $4 AND seq < $5
           AND appended_at_ms >= $6 ORDER BY seq LIMIT 1`,
        [piece.owner, tenant, piece.segment, piece.from, piece.to, timeMs],
      );
      if (rows[0]) return Number(rows[0][0]);
    }
    return Number(row.length);
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
    messages: readonly Buffer[],
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
        labels: options.labels,
        firstSeq: options.firstSeq,
        bytes,
      }),
    };
  }

  async #appendWhenRoom(
    tenant: string,
    sessionId: string,
    messages: readonly Buffer[],
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

  /** The session's row and pieces, or undefined when it does not exist. */
  async #laidOutRow(tenant: string, sessionId: string): Promise<LaidOutRow | undefined> {
    return (await this.#query<LaidOutRow>("read", LAID_OUT_ROW, [tenant, sessionId]))[0];
  }

  /** The messages stored from `seq` on (before `to`) in the piece holding it, as many as one query reads. */
  async #readPiece(
    tenant: string,
    layout: readonly Piece[],
    seq: number,
    to: number,
  ): Promise<Buffer[]> {
    const piece = layout.find((candidate) => candidate.from <= seq && seq < candidate.to);
    const messages: Buffer[] = [];
    if (!piece) return messages;
    const rows = await this.#rows(
      "read",
      `SELECT seq, body FROM sessionstore.messages
       WHERE session_id = $1 AND tenant = $2 AND segment = $3 AND seq >= $4 AND seq < $5
       ORDER BY seq LIMIT $6`,
      [piece.owner, tenant, piece.segment, seq, Math.min(to, piece.to), ROWS_PER_QUERY],
    );
    for (const [rowSeq, body] of rows as [string, string][]) {
      if (Number(rowSeq) !== seq + messages.length) break;
      messages.push(Buffer.from(body, "utf8"));
    }
    return messages;
  }

  /** DATA_LOSS for a message a session's length says it has and its rows do not. */
  #missing(sessionId: string, seq: number, length: number): SessionStoreError {
    this.#events.failed(Code.DataLoss);
    return new SessionStoreError(
      Code.DataLoss,
      `session ${sessionId} has no stored message at seq ${seq} although its length is ${length}; ` +
        "an operator must restore it from a backup",
    );
  }

  async #transaction<Result>(
    action: string,
    work: (client: pg.PoolClient) => Promise<Result>,
  ): Promise<Result> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#failure(action, error);
    }
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
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

/** A session's row, locked for the transaction; NOT_FOUND when it does not exist. */
async function lockedRow(
  client: pg.PoolClient,
  tenant: string,
  sessionId: string,
): Promise<SessionRow> {
  const result = await client.query<SessionRow>(
    "SELECT * FROM sessionstore.sessions WHERE tenant = $1 AND session_id = $2 FOR UPDATE",
    [tenant, sessionId],
  );
  const row = result.rows[0];
  if (!row) throw sessionNotFound(sessionId);
  return row;
}

function boundsOf(row: SessionRow): LogBounds {
  return { firstSeq: Number(row.first_seq), length: Number(row.length) };
}

/** A session's key among all tenants' (tenants never hold a "/"). */
function key(tenant: string, sessionId: string): string {
  return `${tenant}/${sessionId}`;
}
