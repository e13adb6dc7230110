import type { Pool } from "pg";
import { Code, lengthMismatch, type SessionStoreError } from "../../errors.js";
import type { Labels } from "../../labels.js";
import { type AppendChain, type ChainMember, followerError } from "../append-chain.js";
import { AGENT_LOOP_VERSION, type AppendAck } from "../storage.js";
import { type StorageEvents, secondsSince } from "../storage-events.js";
import { databaseFailure } from "./database-errors.js";

/** A request waiting for the transaction that decides it. */
export interface QueuedAppend {
  tenant: string;
  sessionId: string;
  messages: readonly Buffer[];
  expectedSeq: number | undefined;
  sync: boolean;
  chain: AppendChain | undefined;
  /** The session's creation time, if this request creates it (else now). */
  createdAtMs: number | undefined;
  /** The session's labels, if this request creates it. */
  labels: Labels | undefined;
  /** The seq of the session's first message, if this request creates it (else 0). */
  firstSeq: number | undefined;
  bytes: number;
}

/** Most requests and message bytes one transaction takes; the rest wait for the next. */
const MAX_BATCH_REQUESTS = 4096;
const MAX_BATCH_BYTES = 8 << 20;

interface Row {
  first_seq: string;
  next_seq: string;
  outcome: "ok" | "aborted" | "chain";
  actual: string;
  durable_count: string;
}

class Pending implements ChainMember {
  settled = false;
  /** Waits for the previous request of its chain, queued in another lane, to be decided. */
  blocked = false;
  readonly ack: Promise<AppendAck>;
  resolve!: (ack: AppendAck) => void;
  reject!: (error: SessionStoreError) => void;

  constructor(
    readonly request: QueuedAppend,
    readonly lane: Lane,
    private readonly batcher: AppendBatcher,
  ) {
    this.ack = new Promise<AppendAck>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.ack.catch(() => undefined);
  }

  previousAcknowledged(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.lane.schedule();
  }

  previousFailed(error: SessionStoreError): void {
    this.batcher.failQueued(this, error);
  }
}

/**
 * Group commit on PostgreSQL. Requests of this process queue in the order they are made, each in
 * the lane of its session (so one session's requests are decided in order); a lane runs one
 * transaction at a time, taking everything queued in it (it starts as soon as the previous one
 * ends, so requests that arrive meanwhile share the next one), and lanes run side by side. A
 * transaction is one call of sessionstore.append_batch: each request is decided in the database,
 * under its session's row lock, so writers on other replicas are ordered with ours. It commits
 * synchronously only when one of its requests asked for `sync`. Every acknowledgement follows
 * the commit that decided its seqs; a request whose stream's previous request waits in another
 * lane is sent only once that one is decided.
 */
export class AppendBatcher {
  readonly #lanes: Lane[];
  #queuedBytes = 0;
  readonly #roomWaiters: (() => void)[] = [];
  /** Each session's requests not yet decided, by key(tenant, session id). */
  readonly #undecided = new Map<string, Set<Pending>>();

  constructor(
    private readonly pool: Pool,
    lanes: number,
    private readonly maxQueuedBytes: number,
    /** Told of each session appended without a synchronous commit (to make it durable later). */
    private readonly onUnflushed: (tenant: string, sessionId: string) => void,
    /** Told of failures that say the database is unreachable. */
    private readonly onDatabaseFailure: (error: unknown) => void,
    private readonly events: StorageEvents,
  ) {
    this.#lanes = Array.from(
      { length: Math.max(1, lanes) },
      () =>
        new Lane(
          (batch) => this.#runBatch(batch),
          (bytes) => this.#release(bytes),
        ),
    );
  }

  /** Message bytes queued, not yet committed. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Whether `bytes` more fit in the queues now. */
  hasRoom(bytes: number): boolean {
    return this.#queuedBytes === 0 || this.#queuedBytes + bytes <= this.maxQueuedBytes;
  }

  /** Resolves when the queues shrink. */
  roomChanged(): Promise<void> {
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  enqueue(request: QueuedAppend): Promise<AppendAck> {
    const lane = this.#lanes[laneOf(request.tenant, request.sessionId, this.#lanes.length)] as Lane;
    const pending = new Pending(request, lane, this);
    const previous = request.chain?.unsettled;
    request.chain?.add(pending);
    pending.blocked = previous instanceof Pending && previous.lane !== lane;
    this.#queuedBytes += request.bytes;
    this.#track(pending);
    lane.push(pending);
    return pending.ack;
  }

  /**
   * Resolves once every request of the session queued so far is decided (acknowledged or
   * failed): what a rewind or a fork waits for, to be ordered after them.
   */
  async decided(tenant: string, sessionId: string): Promise<void> {
    const undecided = this.#undecided.get(sessionKey(tenant, sessionId));
    if (undecided) await Promise.allSettled([...undecided].map((pending) => pending.ack));
  }

  #track(pending: Pending): void {
    const key = sessionKey(pending.request.tenant, pending.request.sessionId);
    let undecided = this.#undecided.get(key);
    if (!undecided) {
      undecided = new Set();
      this.#undecided.set(key, undecided);
    }
    undecided.add(pending);
    const forget = () => {
      undecided.delete(pending);
      if (undecided.size === 0 && this.#undecided.get(key) === undecided)
        this.#undecided.delete(key);
    };
    pending.ack.then(forget, forget);
  }

  /** Resolves once every queued request is decided. */
  async drain(): Promise<void> {
    for (const lane of this.#lanes) await lane.drain();
  }

  /** A queued request whose chain failed: it fails too, and is not sent. */
  failQueued(pending: Pending, error: SessionStoreError): void {
    if (pending.settled) return;
    if (pending.lane.remove(pending)) this.#release(pending.request.bytes);
    this.#fail(pending, followerError(pending.request.sessionId, error, "nothing stored"));
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    const chainIds = new Map<AppendChain, number>();
    const columns = {
      tenants: [] as string[],
      ids: [] as string[],
      expected: [] as (number | null)[],
      counts: [] as number[],
      bodies: [] as string[],
      chains: [] as (number | null)[],
      created: [] as (number | null)[],
      labels: [] as (string | null)[],
      starts: [] as (number | null)[],
    };
    let durable = false;
    let bytes = 0;
    for (const { request } of batch) {
      bytes += request.bytes;
      columns.tenants.push(request.tenant);
      columns.ids.push(request.sessionId);
      columns.expected.push(request.expectedSeq ?? null);
      columns.counts.push(request.messages.length);
      // The body column is text: the driver's boundary is where messages become strings.
      for (const message of request.messages) columns.bodies.push(message.toString("utf8"));
      let chainId: number | null = null;
      if (request.chain) {
        chainId = chainIds.get(request.chain) ?? chainIds.size;
        chainIds.set(request.chain, chainId);
      }
      columns.chains.push(chainId);
      columns.created.push(request.createdAtMs ?? null);
      columns.labels.push(request.labels ? JSON.stringify(request.labels) : null);
      columns.starts.push(request.firstSeq ?? null);
      durable ||= request.sync;
    }
    let rows: Row[];
    const started = performance.now();
    try {
      const result = await this.pool.query<Row>(
        "SELECT * FROM sessionstore.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        [
          columns.tenants,
          columns.ids,
          columns.expected,
          columns.counts,
          columns.bodies,
          columns.chains,
          columns.created,
          columns.labels,
          columns.starts,
          Date.now(),
          AGENT_LOOP_VERSION,
          durable,
        ],
      );
      rows = result.rows;
    } catch (error) {
      // An error the server reported (it has an SQLSTATE) rolled the statement back; a lost
      // connection leaves its commit's outcome unknown.
      const reported =
        typeof (error as { code?: unknown }).code === "string" &&
        /^[0-9A-Z]{5}$/.test((error as { code: string }).code);
      if (!reported) this.onDatabaseFailure(error);
      this.events.failed(Code.Unavailable);
      const failure = databaseFailure(
        "append",
        error,
        reported ? "nothing stored" : "maybe stored",
      );
      for (const pending of batch) this.#fail(pending, failure);
      return;
    }
    // One transaction, its commit included: a sync batch's write and its synchronous commit.
    const seconds = secondsSince(started);
    this.events.wrote(seconds, columns.bodies.length, bytes);
    if (durable) this.events.synced(seconds);
    for (const [index, pending] of batch.entries()) {
      const row = rows[index] as Row;
      const { request } = pending;
      if (row.outcome === "ok") {
        if (!durable && request.messages.length > 0)
          this.onUnflushed(request.tenant, request.sessionId);
        pending.settled = true;
        pending.resolve({
          sessionId: request.sessionId,
          firstSeq: Number(row.first_seq),
          nextSeq: Number(row.next_seq),
          durableCount: Number(row.durable_count),
        });
        request.chain?.acknowledged(pending);
      } else if (row.outcome === "aborted") {
        this.#fail(
          pending,
          lengthMismatch(request.sessionId, request.expectedSeq ?? 0, Number(row.actual)),
        );
      }
      // "chain": its chain's earlier request in this batch failed, which already failed it.
    }
  }

  #fail(pending: Pending, error: SessionStoreError): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.reject(error);
    pending.request.chain?.failed(pending, error);
  }

  #release(bytes: number): void {
    this.#queuedBytes -= bytes;
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }
}

/** One lane's queue and its one transaction at a time. */
class Lane {
  #queue: Pending[] = [];
  #running: Promise<void> | undefined;

  constructor(
    private readonly run: (batch: Pending[]) => Promise<void>,
    private readonly taken: (bytes: number) => void,
  ) {}

  push(pending: Pending): void {
    this.#queue.push(pending);
    this.schedule();
  }

  /** Starts the lane's transactions unless they run. */
  schedule(): void {
    this.#running ??= this.#runBatches();
  }

  remove(pending: Pending): boolean {
    const index = this.#queue.indexOf(pending);
    if (index === -1) return false;
    this.#queue.splice(index, 1);
    this.schedule();
    return true;
  }

  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Runs transactions while requests are ready, starting once the I/O callbacks under way are
   * done (so requests that arrived together share one). It stops in the same step that sees
   * nothing ready: a request queued (or unblocked) after that starts a new run.
   */
  async #runBatches(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (let batch = this.#take(); batch.length > 0; batch = this.#take()) await this.run(batch);
    } finally {
      this.#running = undefined;
    }
  }

  /** The queued requests up to the first blocked one, within a transaction's size. */
  #take(): Pending[] {
    let bytes = 0;
    let count = 0;
    for (const pending of this.#queue) {
      if (pending.blocked || count >= MAX_BATCH_REQUESTS) break;
      if (count > 0 && bytes + pending.request.bytes > MAX_BATCH_BYTES) break;
      bytes += pending.request.bytes;
      count++;
    }
    const batch = this.#queue.splice(0, count);
    this.taken(bytes);
    return batch;
  }
}

function sessionKey(tenant: string, sessionId: string): string {
  return `${tenant}/${sessionId}`;
}

/** The lane of a session: the same for all its requests. */
function laneOf(tenant: string, sessionId: string, lanes: number): number {
  if (lanes === 1) return 0;
  let hash = 2166136261;
  for (const text of [tenant, sessionId]) {
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  }
  return (hash >>> 0) % lanes;
}
