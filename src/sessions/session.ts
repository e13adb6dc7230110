import type { Logger } from "pino";
import { Code, lengthMismatch, SessionStoreError } from "../errors.js";
import type { SessionStorage, StoredSessionMeta } from "../store/storage.js";
import { type BufferBudget, bufferedSize } from "./buffer-budget.js";

/** When buffered messages are written to storage. */
export interface FlushPolicy {
  /** Write once a session buffers this many messages. */
  flushMessages: number;
  /** Write (and fsync) buffered messages at the latest this long after they arrived. */
  flushIntervalMs: number;
}

/** What every session shares. */
export interface SessionContext {
  storage: SessionStorage;
  policy: FlushPolicy;
  budget: BufferBudget;
  log: Logger;
}

/** A session's metadata as the API reports it: buffered messages included. */
export type SessionMeta = StoredSessionMeta;

interface DurableWaiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** How soon a failed write is retried. */
const RETRY_DELAY_MS = 1000;

/**
 * One session's log as the service sees it: the stored messages plus a buffer of messages
 * acknowledged but not yet written. Seqs are assigned synchronously on append, so requests to a
 * session are totally ordered in arrival order whatever stream they came on. At most one write to
 * storage runs at a time; requests that want durability while it runs share the next write and
 * its fsync (group commit).
 */
export class Session {
  /** Messages [storedCount, length) in order, acknowledged but not yet written. */
  private pending: string[] = [];
  /** The budget size of `pending`. */
  private pendingBytes = 0;
  private storedCount: number;
  private durable: number;
  private updatedAtMs: number;
  private writing: Promise<void> | undefined;
  private syncWanted = false;
  /** Set when a caller wants the whole buffer written now, without fsync (to free buffer room). */
  private writeAllWanted = false;
  private durableWaiters: DurableWaiter[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private discarded = false;
  /** Whether the last write failed (it is being retried). */
  private failing = false;

  private readonly storage: SessionStorage;
  private readonly policy: FlushPolicy;
  private readonly budget: BufferBudget;
  private readonly log: Logger;

  constructor(
    readonly sessionId: string,
    context: SessionContext,
    private readonly stored: Pick<StoredSessionMeta, "createdAtMs" | "agentLoopVersion">,
    counts: Pick<StoredSessionMeta, "messageCount" | "durableCount" | "updatedAtMs">,
  ) {
    ({ storage: this.storage, policy: this.policy, budget: this.budget, log: this.log } = context);
    this.storedCount = counts.messageCount;
    this.durable = counts.durableCount;
    this.updatedAtMs = counts.updatedAtMs;
  }

  /** The session's length: stored and buffered messages. */
  get length(): number {
    return this.storedCount + this.pending.length;
  }

  get durableCount(): number {
    return this.durable;
  }

  /** The budget size of the buffered messages. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Whether the session was deleted: it takes no more messages. */
  get isDiscarded(): boolean {
    return this.discarded;
  }

  /** Whether storage holds any of this session yet. */
  get isStored(): boolean {
    return this.storedCount > 0;
  }

  meta(): SessionMeta {
    return {
      sessionId: this.sessionId,
      createdAtMs: this.stored.createdAtMs,
      agentLoopVersion: this.stored.agentLoopVersion,
      messageCount: this.length,
      durableCount: this.durable,
      updatedAtMs: this.updatedAtMs,
    };
  }

  /**
   * Buffers `messages` (already validated) at the end of the log and returns the seqs they got.
   * With `expectedSeq`, stores nothing and throws ABORTED unless the log's length equals it.
   * `bytes` is their budget size, when the caller has it already.
   */
  append(
    messages: readonly string[],
    expectedSeq?: number,
    bytes = bufferedSize(messages),
  ): { firstSeq: number; nextSeq: number } {
    const firstSeq = this.length;
    if (expectedSeq !== undefined && expectedSeq !== firstSeq) {
      throw lengthMismatch(this.sessionId, expectedSeq, firstSeq);
    }
    if (messages.length > 0) {
      for (const message of messages) this.pending.push(message);
      this.pendingBytes += bytes;
      this.budget.add(bytes);
      this.updatedAtMs = Date.now();
      this.flushTimer ??= setTimeout(
        () => this.onFlushTimer(),
        this.policy.flushIntervalMs,
      ).unref();
      if (this.pending.length >= this.policy.flushMessages) void this.drain();
    }
    return { firstSeq, nextSeq: this.length };
  }

  /** Resolves once messages [0, seq) are durable, writing and fsyncing what it takes. */
  waitDurable(seq: number): Promise<void> {
    if (seq <= this.durable) return Promise.resolve();
    if (this.discarded)
      return Promise.reject(
        new SessionStoreError(Code.NotFound, `session ${this.sessionId} was deleted`),
      );
    return new Promise<void>((resolve, reject) => {
      this.durableWaiters.push({ seq, resolve, reject });
      this.syncWanted = true;
      void this.drain();
    });
  }

  /** Writes and fsyncs everything buffered; resolves to how many messages that wrote. */
  async flush(): Promise<number> {
    const buffered = this.pending.length;
    await this.waitDurable(this.length);
    return buffered;
  }

  /**
   * The messages of [from, to) as they stand now: `stored` is the part to read from storage,
   * `buffered` a copy of the rest. Taken synchronously, so the two always join without a gap.
   */
  snapshot(from: number, to: number): { stored: { from: number; to: number }; buffered: string[] } {
    const storedTo = Math.min(to, this.storedCount);
    return {
      stored: { from, to: Math.max(from, storedTo) },
      buffered: this.pending.slice(
        Math.max(0, from - this.storedCount),
        Math.max(0, to - this.storedCount),
      ),
    };
  }

  /** Drops the buffer (the session is being deleted) once a write in progress is done. */
  async discard(reason: SessionStoreError): Promise<void> {
    this.discarded = true;
    this.pending = [];
    this.budget.release(this.pendingBytes);
    this.pendingBytes = 0;
    this.clearFlushTimer();
    await this.writing;
    this.rejectWaiters(reason);
  }

  /** Starts writing the buffer now (without fsync), to make room in it. */
  writeSoon(): void {
    if (this.pending.length === 0) return;
    this.writeAllWanted = true;
    void this.drain();
  }

  /**
   * Whether the write loop has work: a full batch (writing fewer messages at a time would cost a
   * write each), or anything buffered that a caller wants written or made durable now.
   */
  private hasWriteDue(): boolean {
    return (
      this.pending.length >= this.policy.flushMessages ||
      ((this.writeAllWanted || this.syncWanted) && this.pending.length > 0) ||
      (this.syncWanted && this.durable < this.storedCount)
    );
  }

  private onFlushTimer(): void {
    this.flushTimer = undefined;
    this.syncWanted = true;
    void this.drain();
  }

  /**
   * Starts the write loop unless it runs; resolves when it stops (never rejects). It starts once
   * the I/O callbacks under way are done, so requests that arrived together go out in one write
   * and one fsync: a write costs tens of microseconds of system time whatever its size.
   */
  private drain(): Promise<void> {
    this.writing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.writeLoop())
      .finally(() => {
        this.writing = undefined;
      });
    return this.writing;
  }

  private async writeLoop(): Promise<void> {
    while (!this.discarded && this.hasWriteDue()) {
      const batch = this.pending.slice();
      const sync = this.syncWanted;
      this.syncWanted = false;
      this.writeAllWanted = false;
      const firstSeq = this.storedCount;
      try {
        await this.storage.write(this.sessionId, firstSeq, batch, {
          sync,
          createdAtMs: this.stored.createdAtMs,
        });
      } catch (error) {
        this.onWriteFailed(error, sync);
        return;
      }
      if (this.discarded) return;
      if (this.failing) {
        this.failing = false;
        this.log.info({ sessionId: this.sessionId }, "writing the session works again");
      }
      this.pending.splice(0, batch.length);
      const written = bufferedSize(batch);
      this.pendingBytes -= written;
      this.budget.release(written);
      this.storedCount += batch.length;
      if (sync) {
        this.durable = this.storedCount;
        this.resolveWaiters();
      }
    }
    this.syncWanted = false;
    this.writeAllWanted = false;
    // The timer stays while anything is not yet durable: the interval flush writes the rest.
    if (this.pending.length === 0 && this.durable === this.storedCount) this.clearFlushTimer();
  }

  private onWriteFailed(error: unknown, sync: boolean): void {
    const failure =
      error instanceof SessionStoreError
        ? error
        : new SessionStoreError(
            Code.Unavailable,
            `storage failed for session ${this.sessionId}: ${String(error)}`,
            {
              cause: error,
            },
          );
    // Logged when writing starts failing, not at every retry: a full disk must not flood the log.
    if (!this.failing) {
      this.failing = true;
      this.log.warn(
        { sessionId: this.sessionId, err: error, buffered: this.pending.length },
        "writing the session failed; its messages stay buffered and are retried every second",
      );
    }
    this.syncWanted ||= sync;
    this.rejectWaiters(failure);
    this.clearFlushTimer();
    this.flushTimer = setTimeout(() => this.onFlushTimer(), RETRY_DELAY_MS).unref();
  }

  private resolveWaiters(): void {
    const still: DurableWaiter[] = [];
    for (const waiter of this.durableWaiters) {
      if (waiter.seq <= this.durable) waiter.resolve();
      else still.push(waiter);
    }
    this.durableWaiters = still;
  }

  private rejectWaiters(error: unknown): void {
    const waiters = this.durableWaiters;
    this.durableWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearFlushTimer(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }
}
