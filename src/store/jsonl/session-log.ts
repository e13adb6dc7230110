import type { Logger } from "pino";
import { Code, lengthMismatch, SessionStoreError, sessionNotFound } from "../../errors.js";
import { type AppendChain, type ChainMember, followerError } from "../append-chain.js";
import { type BufferBudget, bufferedSize } from "../buffer-budget.js";
import {
  checkForkPoint,
  checkRewind,
  checkTrim,
  type LogBounds,
  readStart,
} from "../log-bounds.js";
import { pagesOf, resolveRange } from "../read-range.js";
import type {
  AppendAck,
  Appended,
  AppendOptions,
  FailedOutcome,
  MessagePage,
  ReadRange,
  SessionChange,
  SessionMeta,
} from "../storage.js";
import type { StorageEvents } from "../storage-events.js";
import { storageFailure } from "./file-io.js";
import type { StoredLabels } from "./label-files.js";
import { corruption, FileChangedError, type ForkOrigin, type SessionFile } from "./session-file.js";

/** When buffered messages are written to the file. */
export interface FlushPolicy {
  /** Write once a session buffers this many messages. */
  flushMessages: number;
  /** Write and fsync buffered messages at the latest this long after they arrive. */
  flushIntervalMs: number;
}

/** What every session's log shares. */
export interface LogContext {
  policy: FlushPolicy;
  budget: BufferBudget;
  log: Logger;
  events: StorageEvents;
  notify(sessionId: string, change: SessionChange): void;
  /** The file changed under the server: the storage forgets this log and reads the file anew. */
  detach(log: SessionLog, error: FileChangedError): void;
}

/** How soon a failed write is retried. */
const RETRY_DELAY_MS = 1000;

/** Why `admit` could not place a request now; the caller waits as told and tries again. */
export type Deferred =
  | { wait: "room"; bytes: number }
  | { wait: "compare"; resend: Promise<Appended | Deferred> }
  | { wait: "rewind"; done: Promise<void> }
  | { wait: "reopen" };

/** The error of a request that fails after it was admitted, worded by what became of it. */
type Doom = (outcome: FailedOutcome) => SessionStoreError;

/**
 * A request admitted but not yet acknowledged: it waits for durability (`sync`), for an earlier
 * request of its session, or for the previous request of its chain.
 */
class PendingRequest implements ChainMember {
  settled = false;
  /** Whether it waits for the previous request of its chain. */
  waitsForChain = false;
  readonly ack: Promise<AppendAck>;
  private resolveAck!: (ack: AppendAck) => void;
  private rejectAck!: (error: SessionStoreError) => void;

  constructor(
    private readonly log: SessionLog,
    /** The seq reported as the request's first (its expected_seq, for a resend). */
    readonly firstSeq: number,
    /** Where its own new messages start: nothing of the log before it is its own. */
    readonly start: number,
    /** The session's length after it (its next_seq). */
    readonly end: number,
    readonly sync: boolean,
    readonly chain: AppendChain | undefined,
  ) {
    this.ack = new Promise<AppendAck>((resolve, reject) => {
      this.resolveAck = resolve;
      this.rejectAck = reject;
    });
    // The caller handles a failure when it awaits; this keeps Node from reporting it earlier.
    this.ack.catch(() => undefined);
  }

  acknowledge(ack: AppendAck): void {
    this.settled = true;
    this.resolveAck(ack);
    this.chain?.acknowledged(this);
  }

  /** Marks it failed now (its chain fails with it); the error reaches the caller by `reject`. */
  doom(error: SessionStoreError): void {
    this.settled = true;
    this.chain?.failed(this, error);
  }

  reject(error: SessionStoreError): void {
    this.rejectAck(error);
  }

  previousAcknowledged(): void {
    this.waitsForChain = false;
    this.log.settle();
  }

  previousFailed(error: SessionStoreError): void {
    if (this.settled) return;
    this.log.failFrom(this, (outcome) => followerError(this.log.sessionId, error, outcome));
  }
}

/** A Flush (or shutdown) waiting until messages [0, until) are written and durable. */
interface FlushWaiter {
  until: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Requests failed by a rollback that must wait for the file to be cut before they are told. */
interface RollingBack {
  requests: PendingRequest[];
  doom: Doom;
}

/**
 * One session's log in the file backend: the records in its file plus a buffer of messages not
 * yet written. It owns the session's order: seqs are assigned synchronously as requests are
 * admitted, so requests to a session are totally ordered whatever stream they came on. Readers
 * see the acknowledged prefix only (`visible`): a buffered request is acknowledged at once
 * unless something before it in the session or in its stream is still undecided; a `sync` one
 * once fsynced. A request that fails takes back itself and every undecided request after it
 * (cutting them from the file if they were written), so no reader ever saw what is taken back.
 *
 * At most one write to the file runs at a time; requests that want durability while it runs
 * share the next write and its fsync (group commit).
 */
export class SessionLog {
  /** Messages admitted: every seq given out, acknowledged or not. */
  private length: number;
  /** The acknowledged prefix: what readers see. */
  private visible: number;
  /** Messages [0, durable) are fsynced. */
  private durable: number;
  /** Messages [0, written) are in the file, as far as the log is concerned. */
  private written: number;
  /** Messages [written, length), not yet in the file. */
  private unwritten: Buffer[] = [];
  private unwrittenBytes = 0;
  /** Requests not yet settled, in seq order, from `undecidedHead` on. */
  private undecided: PendingRequest[] = [];
  private undecidedHead = 0;
  private rollingBack: RollingBack[] = [];
  /** Counts rollbacks, so a resend compared while one happened is compared again. */
  private rollbacks = 0;
  /** The lowest seq rolled back to while a write runs (it may have written what was taken back). */
  private rollbackFloor = Number.POSITIVE_INFINITY;
  private updatedAtMs: number;
  private discarded = false;
  /** Whether it was discarded because the session was deleted. */
  private deleted = false;
  /** Set while a rewind runs: requests wait for it, then are placed in the rewound log. */
  private rewinding: Promise<void> | undefined;
  /** The last of the rewinds, trims and forks, which run one at a time. */
  private reshaping: Promise<unknown> = Promise.resolve();
  /** Called whenever undecided requests are settled (a rewind waits for none to be left). */
  private settledWaiters: (() => void)[] = [];

  private writing: Promise<void> | undefined;
  private syncWanted = false;
  /** Set when a caller wants the whole buffer written now, without fsync (to free buffer room). */
  private writeAllWanted = false;
  private flushWaiters: FlushWaiter[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** Whether the last write failed (it is being retried). */
  private failing = false;
  /** Whether a rollback took back messages journaled ahead of the file (see `dropAhead`). */
  private aheadRolledBack = false;

  constructor(
    private readonly context: LogContext,
    readonly file: SessionFile,
    /** The session's labels, as its sidecar holds them. */
    private storedLabels: StoredLabels,
  ) {
    this.length = file.length;
    this.visible = file.length;
    this.written = file.length;
    this.durable = file.durableCount;
    this.updatedAtMs = file.updatedAtMs;
  }

  get sessionId(): string {
    return this.file.sessionId;
  }

  /** Whether the log was deleted or detached: it takes no more requests. */
  get isDiscarded(): boolean {
    return this.discarded;
  }

  get labels(): StoredLabels {
    return this.storedLabels;
  }

  /** Records the session's new labels, once they are durable. */
  relabel(labels: StoredLabels): void {
    this.storedLabels = labels;
  }

  /**
   * Whether the session was last updated before `timeMs` and has no request admitted but not yet
   * acknowledged (one would update it): a guarded delete may take it.
   */
  idleSince(timeMs: number): boolean {
    return this.updatedAtMs < timeMs && this.length === this.visible;
  }

  /**
   * Checks, between the log's own writes, whether someone else appended to the file or cut it
   * (the directory watch saw it change); if so, the storage forgets this log and reads the file
   * anew. A write of the log's own that starts meanwhile leaves the question to its own check.
   */
  async checkFile(): Promise<void> {
    if (this.writing || this.discarded) return;
    const count = this.file.length;
    const changed = await this.file.changedOutside();
    if (!changed || this.writing || this.discarded || this.file.length !== count) return;
    this.context.detach(this, changed);
  }

  meta(): SessionMeta {
    return {
      sessionId: this.sessionId,
      createdAtMs: this.file.createdAtMs,
      agentLoopVersion: this.file.agentLoopVersion,
      messageCount: this.visible,
      durableCount: Math.min(this.durable, this.visible),
      updatedAtMs: this.updatedAtMs,
      labels: this.storedLabels.labels,
      labelsRevision: this.storedLabels.revision,
      parent: this.file.parent,
      firstSeq: this.file.firstSeq,
    };
  }

  /** The acknowledged messages' bounds. */
  private get bounds(): LogBounds {
    return { firstSeq: this.file.firstSeq, length: this.visible };
  }

  /**
   * Places a request, synchronously when it can (the common case): the seqs it gets, and its
   * acknowledgement or a promise of it. Otherwise says what to wait for. Throws what the request
   * fails with before anything of it is stored.
   */
  admit(messages: readonly Buffer[], bytes: number, options: AppendOptions): Appended | Deferred {
    if (this.discarded) return { wait: "reopen" };
    if (this.rewinding) return { wait: "rewind", done: this.rewinding };
    const corruptSeq = this.file.corruptSeq;
    if (corruptSeq !== undefined) throw corruption(this.sessionId, corruptSeq);
    options.chain?.checkOpen();
    const { expectedSeq } = options;
    if (expectedSeq !== undefined && expectedSeq !== this.length) {
      if (expectedSeq > this.length || expectedSeq < this.file.firstSeq || messages.length === 0) {
        throw lengthMismatch(this.sessionId, expectedSeq, this.length);
      }
      return { wait: "compare", resend: this.compareResend(messages, expectedSeq, options) };
    }
    if (!this.context.budget.hasRoom(this.unwrittenBytes, bytes)) return { wait: "room", bytes };
    return this.place(messages, bytes, this.length, this.length + messages.length, options);
  }

  /** Starts the writes that free buffer room, so a request waiting for room can go in. */
  writeSoon(): void {
    if (this.unwritten.length === 0) return;
    this.writeAllWanted = true;
    this.drain();
  }

  /**
   * The acknowledged messages of `range`, in pages: records from the file (each checked), then
   * buffered ones. Taken as a snapshot, so the two parts always join without a gap.
   */
  async *read(range: ReadRange): AsyncGenerator<MessagePage> {
    const fromSeq = readStart(this.sessionId, range.fromSeq, this.bounds);
    const { from, to } = resolveRange({ ...range, fromSeq }, this.visible);
    const corruptSeq = this.file.corruptSeq;
    // Past a damaged record the log's length is not known: a read that reaches it, or asks for
    // the end of the log, ends there.
    const wantsEnd = range.limit === 0 || range.last;
    if (corruptSeq !== undefined && (to > corruptSeq || (wantsEnd && to >= corruptSeq))) {
      yield* this.readAdmitted(from, corruptSeq);
      throw corruption(this.sessionId, corruptSeq);
    }
    yield* this.readAdmitted(from, to);
  }

  /** Writes and fsyncs what is acknowledged; resolves to how many messages that wrote. */
  async flush(): Promise<number> {
    const buffered = this.unwritten.length;
    const target = this.visible;
    if (this.durable < target || this.written < target) {
      await new Promise<void>((resolve, reject) => {
        this.flushWaiters.push({ until: target, resolve, reject });
        this.syncWanted = true;
        this.writeAllWanted = true;
        this.drain();
      });
    }
    const corruptSeq = this.file.corruptSeq;
    if (corruptSeq !== undefined) throw corruption(this.sessionId, corruptSeq);
    return buffered;
  }

  /**
   * Drops the messages from `toSeq` on, durably and atomically (SessionFile.replace), when the
   * length is `expectedSeq` (if given); answers them. Ordered with appends: requests admitted
   * before it are settled (acknowledged or failed) first, and requests made while it runs wait
   * for it and are then placed in the rewound log, so one whose expected_seq no longer fits
   * fails with ABORTED and the actual length, and none is acknowledged with a seq it dropped.
   */
  rewind(toSeq: number, expectedSeq: number | undefined): Promise<Buffer[]> {
    return this.reshape(async () => {
      let reopen!: () => void;
      this.rewinding = new Promise<void>((resolve) => {
        reopen = resolve;
      });
      try {
        await this.settleAdmitted();
        this.checkUsable();
        checkRewind(this.sessionId, toSeq, expectedSeq, this.bounds);
        const dropped: Buffer[] = [];
        for await (const page of this.readAdmitted(toSeq, this.visible)) {
          dropped.push(...page.messages);
        }
        if (toSeq < this.visible) {
          await this.exclusively(() => this.file.replace(this.file.firstSeq, toSeq));
          this.rollbacks++;
          this.length = toSeq;
          this.visible = toSeq;
          this.written = toSeq;
          this.durable = this.file.durableCount;
        }
        this.updatedAtMs = Date.now();
        this.context.notify(this.sessionId, { kind: "rewound", toSeq });
        return dropped;
      } finally {
        this.rewinding = undefined;
        reopen();
      }
    });
  }

  /**
   * Drops the messages before `beforeSeq`, durably and atomically; answers how many. Appends go
   * on meanwhile (into the new file once it is in place); acknowledged messages it keeps that
   * were still buffered are written first.
   */
  trim(beforeSeq: number): Promise<number> {
    return this.reshape(async () => {
      // A trim past a damaged record drops it: the session is whole again.
      this.checkUsable(beforeSeq);
      checkTrim(this.sessionId, beforeSeq, this.bounds);
      const firstSeq = this.file.firstSeq;
      if (beforeSeq <= firstSeq) return 0;
      if (this.written < beforeSeq) await this.flush();
      this.checkUsable(beforeSeq);
      await this.exclusively(async () => {
        await this.writeJournaledAhead();
        await this.file.replace(beforeSeq, this.file.length);
      });
      // A resend being compared with the trimmed messages decides again.
      this.rollbacks++;
      this.durable = Math.min(this.written, this.file.durableCount);
      this.settle();
      this.resolveFlushWaiters();
      return beforeSeq - firstSeq;
    });
  }

  /**
   * Runs `create` with what a fork at `atSeq` shares of this session, once the messages below
   * `atSeq` are durable, while no rewind or trim can change which files hold them.
   */
  fork<T>(atSeq: number, create: (origin: ForkOrigin) => Promise<T>): Promise<T> {
    return this.reshape(async () => {
      this.checkUsable();
      checkForkPoint(this.sessionId, atSeq, this.bounds);
      if (this.durable < atSeq || this.written < atSeq) await this.flush();
      this.checkUsable();
      return create({
        parent: { sessionId: this.sessionId, seq: atSeq },
        firstSeq: this.file.firstSeq,
        pieces: this.file.piecesBelow(atSeq),
      });
    });
  }

  /**
   * The first acknowledged seq appended at or after `timeMs`. The file knows its records' times;
   * buffered messages (durable in the journal or not) are younger than all of them and count as
   * young unless the session was last appended to before `timeMs`.
   */
  firstSeqSince(timeMs: number): number {
    const inFile = Math.min(this.file.firstSeqSince(timeMs), this.written, this.visible);
    if (inFile < Math.min(this.written, this.visible)) return inFile;
    return this.updatedAtMs >= timeMs ? inFile : this.visible;
  }

  /** Runs rewinds, trims and forks one at a time, in the order they were asked for. */
  private reshape<T>(task: () => Promise<T>): Promise<T> {
    const run = this.reshaping.then(task);
    this.reshaping = run.catch(() => undefined);
    return run;
  }

  /** Runs `task` while no write runs, and none starts: it replaces the file. */
  private async exclusively<T>(task: () => Promise<T>): Promise<T> {
    while (this.writing) await this.writing;
    let done!: () => void;
    this.writing = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      return await task();
    } catch (error) {
      if (error instanceof FileChangedError) this.context.detach(this, error);
      throw error;
    } finally {
      this.writing = undefined;
      done();
      if (!this.discarded && !this.failing && this.hasWriteDue()) this.drain();
    }
  }

  /**
   * Writes the messages journaled ahead of the file (while no write runs): the journal's record
   * of them is for this file, which is about to be replaced, and the new file must hold them.
   */
  private async writeJournaledAhead(): Promise<void> {
    const count = this.file.aheadCount;
    if (count === 0) return;
    const batch = this.unwritten.slice(0, count);
    await this.file.append(batch, false);
    this.unwritten.splice(0, count);
    this.written += count;
    this.release(bufferedSize(batch));
  }

  /** Waits until every admitted request is settled and everything admitted is durable. */
  private async settleAdmitted(): Promise<void> {
    while (!this.discarded) {
      if (this.undecidedCount > 0) {
        await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
      } else if (
        this.durable < this.length ||
        this.written < this.length ||
        this.file.length !== this.written
      ) {
        await this.flushAll();
      } else {
        return;
      }
    }
  }

  /** Refuses to reshape a log that ended, or a session with a damaged record from `keptFrom` on. */
  private checkUsable(keptFrom = 0): void {
    if (this.discarded) {
      if (this.deleted) throw sessionNotFound(this.sessionId);
      throw new SessionStoreError(
        Code.Unavailable,
        `the file of session ${this.sessionId} changed outside the server, which reads it anew: retry`,
      );
    }
    const corruptSeq = this.file.corruptSeq;
    if (corruptSeq !== undefined && corruptSeq >= keptFrom) {
      throw corruption(this.sessionId, corruptSeq);
    }
  }

  /**
   * Ends the log because the session is deleted: every undecided request fails with NOT_FOUND.
   * Resolves, once a write in progress is done, to the function that tells those requests,
   * given whether the file is gone (so that "nothing was stored" is true when they hear it).
   */
  async discard(): Promise<(outcome: FailedOutcome) => void> {
    this.deleted = true;
    const doomed = this.end((outcome) => deletedError(this.sessionId, outcome));
    await this.writing;
    return (outcome) => {
      for (const request of doomed.requests) request.reject(doomed.doom(outcome));
    };
  }

  /**
   * Ends the log because its file changed outside the server (`reason` says how). Undecided
   * requests fail, saying they may be stored; acknowledged messages not yet written are returned
   * so the storage can keep them somewhere.
   */
  detach(reason: string): { firstSeq: number; messages: Buffer[] } {
    const unwritten = {
      firstSeq: this.written,
      messages: this.unwritten.slice(0, Math.max(0, this.visible - this.written)),
    };
    const doomed = this.end(
      () =>
        new SessionStoreError(
          Code.Unavailable,
          `the file of session ${this.sessionId} ${reason} outside the server before this request was acknowledged; ` +
            "it may have been stored: read the session before resending",
        ),
    );
    for (const request of doomed.requests) request.reject(doomed.doom("maybe stored"));
    return unwritten;
  }

  /** Everything admitted written and fsynced; rejects with the storage's failure. */
  flushAll(): Promise<void> {
    if (this.durable >= this.length && this.written === this.length && !this.aheadRolledBack) {
      if (this.file.length === this.written) return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ until: this.length, resolve, reject });
      this.syncWanted = true;
      this.writeAllWanted = true;
      this.drain();
    });
  }

  /**
   * Ends the log for shutdown, after `flushAll`: what is still undecided fails with UNAVAILABLE.
   * Resolves to how many acknowledged messages could not be written.
   */
  async close(): Promise<number> {
    const closed = new SessionStoreError(
      Code.Unavailable,
      "the server is shutting down; this request was not acknowledged: resend it to another server with expected_seq",
    );
    const unwritten = this.visible - this.written;
    const doomed = this.end(() => closed);
    for (const request of doomed.requests) request.reject(closed);
    await this.writing;
    return Math.max(0, unwritten);
  }

  /** Acknowledges, in order, the undecided requests whose conditions now hold. */
  settle(): void {
    let decided = false;
    for (;;) {
      const head = this.undecided[this.undecidedHead];
      if (!head || head.waitsForChain || (head.sync && this.durable < head.end)) break;
      this.undecidedHead++;
      this.visible = Math.max(this.visible, this.nextUndecidedStart());
      decided = true;
      head.acknowledge(this.ackOf(head.firstSeq, head.end));
    }
    if (this.undecidedHead === this.undecided.length) {
      this.undecided = [];
      this.undecidedHead = 0;
    }
    if (decided) this.grew();
    if (decided) this.wakeSettledWaiters();
  }

  /**
   * Fails `request` and every undecided request after it, taking back their messages: the log
   * ends where `request`'s own messages started. Their chains fail with them at once; they hear
   * it once any of their messages already written are cut from the file.
   */
  failFrom(request: PendingRequest, doom: Doom): void {
    const index = this.undecided.indexOf(request, this.undecidedHead);
    if (index === -1) return;
    const requests = this.undecided.splice(index);
    this.rollBackTo(request.start);
    for (const failed of requests) failed.doom(doom("nothing stored"));
    this.wakeSettledWaiters();
    if (this.file.length > this.written || this.aheadRolledBack) {
      this.rollingBack.push({ requests, doom });
      this.drain();
    } else {
      for (const failed of requests) failed.reject(doom("nothing stored"));
    }
  }

  private place(
    messages: readonly Buffer[],
    bytes: number,
    firstSeq: number,
    end: number,
    options: AppendOptions,
  ): Appended {
    const start = this.length;
    if (messages.length > 0) {
      for (const message of messages) this.unwritten.push(message);
      this.length += messages.length;
      this.unwrittenBytes += bytes;
      this.context.budget.add(bytes);
      this.flushTimer ??= setTimeout(
        () => this.onFlushTimer(),
        this.context.policy.flushIntervalMs,
      ).unref();
      if (this.unwritten.length >= this.context.policy.flushMessages) this.drain();
    }
    const { chain, sync } = options;
    const decidedNow =
      this.undecidedCount === 0 && !chain?.waiting && (!sync || this.durable >= end);
    if (decidedNow) {
      if (this.length > this.visible) {
        this.visible = this.length;
        this.grew();
      }
      return { ack: this.ackOf(firstSeq, end) };
    }
    const request = new PendingRequest(this, firstSeq, start, end, sync, chain);
    if (chain) request.waitsForChain = chain.add(request);
    this.undecided.push(request);
    if (sync) {
      this.syncWanted = true;
      this.drain();
    }
    this.settle();
    return { ack: request.ack };
  }

  /**
   * A request whose expected_seq lies inside the log is a resend when the messages admitted from
   * there equal its first ones: only the rest is appended, and it is acknowledged with the
   * original seqs. Anything else is ABORTED. Resolves to "reopen" when the log changed while
   * stored messages were read, so the caller decides again.
   */
  private async compareResend(
    messages: readonly Buffer[],
    expectedSeq: number,
    options: AppendOptions,
  ): Promise<Appended | Deferred> {
    const length = this.length;
    const rollbacks = this.rollbacks;
    const overlap = Math.min(messages.length, length - expectedSeq);
    let index = 0;
    try {
      for await (const page of this.readAdmitted(expectedSeq, expectedSeq + overlap)) {
        for (const stored of page.messages) {
          if (!messages[index]?.equals(stored))
            throw lengthMismatch(this.sessionId, expectedSeq, length);
          index++;
        }
      }
    } catch (error) {
      // A rewind or trim overtook the comparison: decide again on the log as it is now.
      if (this.rollbacks !== rollbacks) return { wait: "reopen" };
      throw error;
    }
    if (this.discarded || this.length !== length || this.rollbacks !== rollbacks) {
      return { wait: "reopen" };
    }
    if (index !== overlap) throw lengthMismatch(this.sessionId, expectedSeq, length);
    options.chain?.checkOpen();
    const rest = messages.slice(overlap);
    const bytes = bufferedSize(rest);
    if (!this.context.budget.hasRoom(this.unwrittenBytes, bytes)) return { wait: "room", bytes };
    return this.place(rest, bytes, expectedSeq, expectedSeq + messages.length, options);
  }

  /** Messages [from, to) as admitted, acknowledged or not: records from the file, then memory. */
  private async *readAdmitted(from: number, to: number): AsyncGenerator<MessagePage> {
    if (from >= to) return;
    const corruptSeq = this.file.corruptSeq;
    const storedTo = Math.min(to, this.written);
    const buffered = this.unwritten.slice(
      Math.max(0, from - this.written),
      Math.max(0, to - this.written),
    );
    let seq = from;
    if (storedTo > from) {
      const readable = corruptSeq === undefined ? storedTo : Math.min(storedTo, corruptSeq);
      try {
        for await (const messages of this.file.read(from, readable - from)) {
          yield { firstSeq: seq, messages };
          seq += messages.length;
        }
      } catch (error) {
        if (error instanceof FileChangedError) this.context.detach(this, error);
        throw error;
      }
      if (readable < storedTo) throw corruption(this.sessionId, readable);
    }
    yield* pagesOf(buffered, seq);
  }

  private get undecidedCount(): number {
    return this.undecided.length - this.undecidedHead;
  }

  /** Where the first undecided request's own messages start, or the length when none is. */
  private nextUndecidedStart(): number {
    return this.undecided[this.undecidedHead]?.start ?? this.length;
  }

  private ackOf(firstSeq: number, nextSeq: number): AppendAck {
    return {
      sessionId: this.sessionId,
      firstSeq,
      nextSeq,
      durableCount: Math.min(this.durable, this.visible),
    };
  }

  private grew(): void {
    this.updatedAtMs = Date.now();
    this.context.notify(this.sessionId, { kind: "appended" });
  }

  /** Takes back every message from `seq` on (all undecided): the log's length becomes `seq`. */
  private rollBackTo(seq: number): void {
    this.rollbacks++;
    this.rollbackFloor = Math.min(this.rollbackFloor, seq);
    const ahead = this.file.aheadCount;
    if (ahead > 0 && seq < this.written + ahead) this.aheadRolledBack = true;
    if (seq >= this.written) {
      const dropped = this.unwritten.splice(seq - this.written);
      this.release(bufferedSize(dropped));
    } else {
      this.release(this.unwrittenBytes);
      this.unwritten = [];
      this.written = seq;
    }
    this.length = seq;
    this.durable = Math.min(this.durable, seq);
  }

  /** Ends the log: undecided requests are failed with `doom` (the caller tells them). */
  private end(doom: Doom): RollingBack {
    this.discarded = true;
    const requests = this.undecided.splice(this.undecidedHead);
    this.undecided = [];
    this.undecidedHead = 0;
    for (const request of requests) request.doom(doom("nothing stored"));
    for (const pending of this.rollingBack.splice(0)) requests.push(...pending.requests);
    this.release(this.unwrittenBytes);
    this.clearFlushTimer();
    for (const waiter of this.flushWaiters.splice(0)) waiter.reject(doom("nothing stored"));
    this.wakeSettledWaiters();
    return { requests, doom };
  }

  private wakeSettledWaiters(): void {
    for (const wake of this.settledWaiters.splice(0)) wake();
  }

  private release(bytes: number): void {
    if (bytes === 0) return;
    this.unwrittenBytes -= bytes;
    this.context.budget.release(bytes);
  }

  /**
   * Whether the write loop has work: a cut to make, a full batch (writing fewer messages at a
   * time would cost a write each), or anything buffered that a caller wants written or durable.
   */
  private hasWriteDue(): boolean {
    return (
      this.file.length > this.written ||
      this.aheadRolledBack ||
      this.unwritten.length >= this.context.policy.flushMessages ||
      (this.writeAllWanted && this.unwritten.length > 0) ||
      (this.syncWanted && this.unwritten.length > this.file.aheadCount) ||
      (this.syncWanted && this.durable < this.written)
    );
  }

  /**
   * Whether a durable write can go to the journal alone, the file being written later with
   * more messages: the buffer is not yet due for the file, and nobody asked for the file.
   */
  private journalsAhead(): boolean {
    return (
      this.syncWanted &&
      !this.writeAllWanted &&
      this.unwritten.length < this.context.policy.flushMessages &&
      this.file.canJournalAhead
    );
  }

  private onFlushTimer(): void {
    this.flushTimer = undefined;
    this.syncWanted = true;
    this.writeAllWanted = true;
    this.drain();
  }

  /**
   * Starts the write loop unless it runs. It starts once the I/O callbacks under way are done,
   * so requests that arrived together go out in one write and one fsync.
   */
  private drain(): void {
    this.writing ??= this.runWriteLoop();
  }

  /**
   * The write loop. Work that arrived while it was ending (an acknowledgement it gave lets the
   * caller send the next request at once) starts the next loop instead of waiting for the
   * flush timer.
   */
  private async runWriteLoop(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      await this.writeLoop();
    } finally {
      this.writing = undefined;
    }
    if (!this.discarded && !this.failing && this.hasWriteDue()) this.drain();
  }

  private async writeLoop(): Promise<void> {
    while (!this.discarded && this.hasWriteDue()) {
      if (this.file.length > this.written || this.aheadRolledBack) {
        if (!(await this.cutRolledBack())) return;
        continue;
      }
      if (this.journalsAhead()) {
        if (!(await this.journalAhead())) return;
        continue;
      }
      const batch = this.unwritten.slice();
      const batchBytes = this.unwrittenBytes;
      const base = this.written;
      const sync = this.syncWanted;
      this.syncWanted = false;
      this.writeAllWanted = false;
      this.rollbackFloor = Number.POSITIVE_INFINITY;
      try {
        await this.file.append(batch, sync);
      } catch (error) {
        this.onWriteFailed(error, sync);
        return;
      }
      if (this.discarded) return;
      if (this.failing) {
        this.failing = false;
        this.context.log.info({ sessionId: this.sessionId }, "writing the session works again");
      }
      if (this.written === base) {
        // What a rollback during the write took back stays in the file until the next cut.
        const kept = Math.min(batch.length, this.rollbackFloor - base);
        const keptBytes = kept === batch.length ? batchBytes : bufferedSize(batch.slice(0, kept));
        this.unwritten.splice(0, kept);
        this.written = base + kept;
        this.release(keptBytes);
      }
      if (sync) {
        this.durable = Math.max(this.durable, this.written);
        this.settle();
        this.resolveFlushWaiters();
      }
    }
    this.syncWanted = false;
    this.writeAllWanted = false;
    // The timer stays while anything is not yet durable: the interval flush writes the rest.
    if (this.unwritten.length === 0 && this.durable >= this.written) this.clearFlushTimer();
  }

  /**
   * Makes the buffered messages not yet journaled durable through the journal alone (see
   * SessionFile.journalAhead); resolves to false when that failed (the failure is handled).
   */
  private async journalAhead(): Promise<boolean> {
    this.syncWanted = false;
    const base = this.written;
    const rollbacks = this.rollbacks;
    const batch = this.unwritten.slice(this.file.aheadCount);
    try {
      await this.file.journalAhead(batch);
    } catch (error) {
      this.onWriteFailed(error, true);
      return false;
    }
    if (this.discarded) return false;
    // After a rollback meanwhile, what the journal holds is given up (cutRolledBack) instead.
    if (this.rollbacks === rollbacks && this.written === base) {
      this.durable = Math.max(this.durable, base + this.file.aheadCount);
      this.settle();
      this.resolveFlushWaiters();
    }
    return true;
  }

  /**
   * Cuts from the file what rollbacks took back, durably, then tells the requests they failed:
   * that nothing of them was stored, or, when the cut failed, that they may have been. Messages
   * taken back that were journaled ahead are given up with the journal's record of the file
   * (SessionFile.dropAhead), after the buffered messages that stay are written.
   */
  private async cutRolledBack(): Promise<boolean> {
    let cut = true;
    let failure: unknown;
    try {
      if (this.aheadRolledBack) {
        this.aheadRolledBack = false;
        const kept = this.unwritten.slice();
        const keptBytes = this.unwrittenBytes;
        await this.file.dropAhead(kept);
        this.unwritten.splice(0, kept.length);
        this.written += kept.length;
        this.release(keptBytes);
        this.durable = Math.max(this.durable, this.written);
      }
      await this.file.truncate(this.written);
    } catch (error) {
      cut = false;
      failure = error;
    }
    for (const { requests, doom } of this.rollingBack.splice(0)) {
      for (const request of requests) request.reject(doom(cut ? "nothing stored" : "maybe stored"));
    }
    if (!cut) this.onWriteFailed(failure, false);
    return cut;
  }

  private onWriteFailed(error: unknown, sync: boolean): void {
    if (error instanceof FileChangedError) {
      this.context.detach(this, error);
      return;
    }
    const failure =
      error instanceof SessionStoreError ? error : storageFailure("write", this.sessionId, error);
    this.context.events.failed(failure.code);
    // Logged when writing starts failing, not at every retry: a full disk must not flood the log.
    if (!this.failing) {
      this.failing = true;
      this.context.log.warn(
        { sessionId: this.sessionId, err: error, buffered: this.unwritten.length },
        "writing the session failed; acknowledged messages stay buffered and are retried every second",
      );
    }
    this.syncWanted ||= sync;
    // Requests waiting for durability cannot be acknowledged now: the first of them and every
    // one after it fail. Those before it only wait for their chains; the retry writes them.
    const firstSync = this.undecided.slice(this.undecidedHead).find((request) => request.sync);
    if (firstSync) {
      this.failFrom(
        firstSync,
        (outcome) =>
          new SessionStoreError(failure.code, withOutcome(failure.message, outcome), {
            cause: error,
          }),
      );
    }
    for (const waiter of this.flushWaiters.splice(0)) waiter.reject(failure);
    this.clearFlushTimer();
    this.flushTimer = setTimeout(() => this.onFlushTimer(), RETRY_DELAY_MS).unref();
  }

  private resolveFlushWaiters(): void {
    const still: FlushWaiter[] = [];
    for (const waiter of this.flushWaiters) {
      if (waiter.until <= this.durable && waiter.until <= this.written) waiter.resolve();
      else still.push(waiter);
    }
    this.flushWaiters = still;
  }

  private clearFlushTimer(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }
}

/** A storage failure's message with the advice that fits what became of the request. */
function withOutcome(message: string, outcome: FailedOutcome): string {
  const reason = message.replace(
    /; (nothing of this request was stored|this request may still be stored).*$/,
    "",
  );
  return `${reason}; ${adviceFor(outcome)}`;
}

function adviceFor(outcome: FailedOutcome): string {
  return outcome === "nothing stored"
    ? "nothing of this request was stored; retry later"
    : "this request may still be stored: resend it with expected_seq (or read the session's length first) so that it is stored once";
}

function deletedError(sessionId: string, outcome: FailedOutcome): SessionStoreError {
  return new SessionStoreError(
    Code.NotFound,
    `session ${sessionId} was deleted before this request was acknowledged; ${
      outcome === "nothing stored" ? "nothing of it was stored" : "it may have been stored"
    }`,
  );
}
