import type { Logger } from "pino";
import { Code, invalidArgument, lengthMismatch, SessionStoreError } from "../errors.js";
import { AGENT_LOOP_VERSION, type SessionStorage } from "../store/storage.js";
import { BufferBudget, bufferedSize } from "./buffer-budget.js";
import { type FlushPolicy, Session, type SessionContext, type SessionMeta } from "./session.js";
import { checkSessionId, type MessageLimits, normalizeMessages } from "./validation.js";
import { WatcherRegistry } from "./watchers.js";

export interface SessionManagerOptions extends FlushPolicy, MessageLimits {
  maxSessionBufferBytes: number;
  maxBufferBytes: number;
  /** `sync`: every append is acknowledged only once durable, as if it asked for `sync`. */
  durability: "buffered" | "sync";
}

export interface AppendOptions {
  expectedSeq?: number;
  sync: boolean;
}

export interface AppendAck {
  sessionId: string;
  firstSeq: number;
  nextSeq: number;
  durableCount: number;
}

/**
 * A request that got its seqs. `ack` is its acknowledgement, or a promise of it when it waits for
 * durability (buffered appends need no promise: the append path allocates as little as it can).
 */
export interface Appended {
  ack: AppendAck | Promise<AppendAck>;
}

export interface LoadOptions {
  fromSeq: number;
  /** 0: no limit. */
  limit: number;
  /** With limit: the last `limit` messages. */
  last: boolean;
}

export interface MessagePage {
  firstSeq: number;
  messages: string[];
}

export interface ListOptions {
  pageSize: number;
  pageToken: string;
  prefix: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** Buffered messages are served in pages of about this many bytes. */
const PAGE_BYTES = 1 << 20;

/**
 * The service's semantics over any storage: validation, per-session ordering and buffering,
 * read-your-writes, listing and deletion. Session state is loaded from storage on first use.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  /** Storage look-ups in progress, so concurrent first uses of a session share one. */
  private readonly opening = new Map<string, Promise<void>>();
  /** Deletions in progress: every other use of the id waits for them. */
  private readonly deleting = new Map<string, Promise<boolean>>();
  /** Sessions created here whose first messages storage does not hold yet (List must show them). */
  private readonly unstored = new Set<Session>();
  private readonly watchers = new WatcherRegistry();
  private readonly budget: BufferBudget;
  private readonly context: SessionContext;
  private closing = false;

  constructor(
    private readonly storage: SessionStorage,
    private readonly options: SessionManagerOptions,
    private readonly log: Logger,
  ) {
    this.budget = new BufferBudget(options.maxSessionBufferBytes, options.maxBufferBytes);
    this.context = { storage, policy: options, budget: this.budget, log };
  }

  /**
   * Validates one request's messages and buffers them; resolves once they have their seqs.
   * Nothing of an invalid request is stored. Requests to a session are ordered as they call this.
   */
  async append(
    sessionId: string,
    messages: readonly string[],
    options: AppendOptions,
  ): Promise<Appended> {
    checkSessionId(sessionId);
    const normalized = normalizeMessages(messages, this.options);
    const bytes = bufferedSize(normalized);
    if (bytes > Math.min(this.budget.perSession, this.budget.total)) {
      throw new SessionStoreError(
        Code.ResourceExhausted,
        `the request's messages take ${bytes} bytes, more than a session may buffer ` +
          `(${Math.min(this.budget.perSession, this.budget.total)}, --max-session-buffer-bytes and --max-buffer-bytes); ` +
          "send them in several requests",
      );
    }
    const { expectedSeq } = options;
    for (;;) {
      this.checkOpen();
      // Only a request with messages that may go first creates the session (one failing its
      // expected_seq must leave nothing behind).
      const creates = normalized.length > 0 && (expectedSeq ?? 0) === 0;
      const session = await this.lookup(sessionId, creates);
      // Deleted while this request waited: it goes to the new session.
      if (session?.isDiscarded) continue;
      if (!session) {
        if (expectedSeq !== undefined && expectedSeq !== 0)
          throw lengthMismatch(sessionId, expectedSeq, 0);
        const ack = { sessionId, firstSeq: 0, nextSeq: 0, durableCount: 0 };
        return { ack };
      }
      const length = session.length;
      if (expectedSeq !== undefined && expectedSeq < length && normalized.length > 0) {
        const retried = await this.appendRetry(session, expectedSeq, normalized, length);
        if (retried === "changed") continue;
        return this.acknowledge(
          session,
          expectedSeq,
          expectedSeq + normalized.length,
          options.sync,
        );
      }
      if (!this.budget.hasRoom(session.bufferedBytes, bytes)) {
        await this.roomFor(session, bytes);
        continue;
      }
      const { firstSeq, nextSeq } = session.append(normalized, expectedSeq, bytes);
      if (normalized.length > 0) this.watchers.notify(sessionId);
      return this.acknowledge(session, firstSeq, nextSeq, options.sync);
    }
  }

  /**
   * A request whose expected_seq lies inside the log is a retry when the messages stored from
   * there equal its first ones: only the rest is appended. Anything else is ABORTED. Resolves to
   * "changed" when the session grew while stored messages were read, so the caller decides again.
   */
  private async appendRetry(
    session: Session,
    expectedSeq: number,
    messages: string[],
    length: number,
  ): Promise<"appended" | "changed"> {
    const overlap = Math.min(messages.length, length - expectedSeq);
    let index = 0;
    for await (const page of this.load(session.sessionId, {
      fromSeq: expectedSeq,
      limit: overlap,
      last: false,
    })) {
      for (const stored of page.messages) {
        if (stored !== messages[index])
          throw lengthMismatch(session.sessionId, expectedSeq, length);
        index++;
      }
    }
    if (session.isDiscarded || session.length !== length) return "changed";
    if (index !== overlap) throw lengthMismatch(session.sessionId, expectedSeq, length);
    if (overlap < messages.length) {
      session.append(messages.slice(overlap), length);
      this.watchers.notify(session.sessionId);
    }
    return "appended";
  }

  /** Starts the writes that free buffer room for `bytes`, and waits for some to complete. */
  private async roomFor(session: Session, bytes: number): Promise<void> {
    session.writeSoon();
    if (this.budget.isTotalFull(bytes)) {
      for (const other of this.sessions.values()) other.writeSoon();
    }
    await this.budget.changed();
  }

  /** The acknowledgement of messages [firstSeq, nextSeq), once as durable as asked. */
  private acknowledge(
    session: Session,
    firstSeq: number,
    nextSeq: number,
    sync: boolean,
  ): Appended {
    const { sessionId } = session;
    const ack = () => ({ sessionId, firstSeq, nextSeq, durableCount: session.durableCount });
    if (!sync && this.options.durability !== "sync") return { ack: ack() };
    const durable = session.waitDurable(nextSeq).then(ack);
    // The caller handles a failure when it awaits; this keeps Node from reporting it earlier.
    durable.catch(() => undefined);
    return { ack: durable };
  }

  /**
   * A session's messages from `fromSeq` on, then each new one as it is appended, until the
   * session is deleted (NOT_FOUND) or `signal` aborts. Works for sessions not created yet.
   */
  async *watch(
    sessionId: string,
    fromSeq: number,
    signal?: AbortSignal,
  ): AsyncGenerator<MessagePage> {
    checkSessionId(sessionId);
    this.checkOpen();
    const watcher = this.watchers.add(sessionId);
    try {
      let next = fromSeq;
      while (!signal?.aborted) {
        if (watcher.deleted)
          throw new SessionStoreError(Code.NotFound, `session ${sessionId} was deleted`);
        const session = await this.lookup(sessionId);
        if (session && next < session.length) {
          for await (const page of this.load(sessionId, { fromSeq: next, limit: 0, last: false })) {
            if (watcher.deleted) break;
            yield page;
            next = page.firstSeq + page.messages.length;
          }
          continue;
        }
        await watcher.wait(signal);
      }
    } finally {
      this.watchers.remove(sessionId, watcher);
    }
  }

  /** Writes and fsyncs the buffer of one session, or of all when `sessionId` is empty. */
  async flush(sessionId: string): Promise<number> {
    if (sessionId !== "") {
      checkSessionId(sessionId);
      return (await this.lookup(sessionId))?.flush() ?? 0;
    }
    const counts = await Promise.all([...this.sessions.values()].map((session) => session.flush()));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** A session's messages in order, in pages, buffered ones included; nothing when unknown. */
  async *load(sessionId: string, options: LoadOptions): AsyncGenerator<MessagePage> {
    checkSessionId(sessionId);
    const session = await this.lookup(sessionId);
    if (!session) return;
    const total = session.length;
    const to =
      options.limit > 0 && !options.last ? Math.min(total, options.fromSeq + options.limit) : total;
    const from =
      options.limit > 0 && options.last
        ? Math.max(options.fromSeq, total - options.limit)
        : options.fromSeq;
    if (from >= to) return;
    const { stored, buffered } = session.snapshot(from, to);
    let seq = stored.from;
    if (stored.to > stored.from) {
      for await (const messages of this.storage.read(
        sessionId,
        stored.from,
        stored.to - stored.from,
      )) {
        yield { firstSeq: seq, messages };
        seq += messages.length;
      }
    }
    yield* pages(buffered, seq);
  }

  /** A session's metadata, or undefined when it does not exist. */
  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    checkSessionId(sessionId);
    return (await this.lookup(sessionId))?.meta();
  }

  /** One page of sessions sorted by id, and the token of the next page ("" after the last). */
  async list(options: ListOptions): Promise<{ sessions: SessionMeta[]; nextPageToken: string }> {
    const pageSize = Math.min(options.pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    const after = decodePageToken(options.pageToken);
    const inRange = (id: string) => id.startsWith(options.prefix) && id > after;
    const stored = await this.storage.list({ prefix: options.prefix, after, limit: pageSize + 1 });
    const byId = new Map(stored.map((meta) => [meta.sessionId, meta]));
    for (const session of this.unstored) {
      if (session.isStored) this.unstored.delete(session);
      else if (inRange(session.sessionId)) byId.set(session.sessionId, session.meta());
    }
    const ids = [...byId.keys()].sort().slice(0, pageSize + 1);
    const sessions = ids.slice(0, pageSize).map((id) => {
      const live = this.sessions.get(id);
      return live ? live.meta() : (byId.get(id) as SessionMeta);
    });
    const last = sessions.at(-1);
    return {
      sessions,
      nextPageToken: ids.length > pageSize && last ? encodePageToken(last.sessionId) : "",
    };
  }

  /** Deletes a session's buffer and stored messages; resolves to whether it existed. */
  async delete(sessionId: string): Promise<boolean> {
    checkSessionId(sessionId);
    this.checkOpen();
    for (
      let pending = this.deleting.get(sessionId);
      pending;
      pending = this.deleting.get(sessionId)
    ) {
      await pending.catch(() => undefined);
    }
    this.watchers.endDeleted(sessionId);
    const deletion = this.deleteNow(sessionId);
    this.deleting.set(sessionId, deletion);
    try {
      return await deletion;
    } finally {
      this.deleting.delete(sessionId);
    }
  }

  /** Refuses new work, then writes and fsyncs every buffer. */
  async close(): Promise<void> {
    this.closing = true;
    this.budget.wakeAll(); // appends waiting for buffer room now fail with UNAVAILABLE
    const results = await Promise.allSettled(
      [...this.sessions.values()].map((session) => session.flush()),
    );
    for (const result of results) {
      if (result.status === "rejected")
        this.log.error({ err: result.reason }, "could not flush a session at shutdown");
    }
    // No more timed writes: storage closes next.
    const closed = new SessionStoreError(Code.Unavailable, "the server is shutting down");
    await Promise.all([...this.sessions.values()].map((session) => session.discard(closed)));
    await this.storage.close();
  }

  private async deleteNow(sessionId: string): Promise<boolean> {
    await this.opening.get(sessionId);
    const session = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    // Counted before discard() empties the buffer: a session only buffered existed too.
    const hadMessages = session !== undefined && session.length > 0;
    if (session) {
      this.unstored.delete(session);
      await session.discard(
        new SessionStoreError(Code.NotFound, `session ${sessionId} was deleted`),
      );
    }
    const existed = await this.storage.delete(sessionId);
    return existed || hadMessages;
  }

  /**
   * The session, loading it from storage on first use. When it does not exist: a new, empty one
   * with `create`, else undefined.
   */
  private async lookup(sessionId: string, create = false): Promise<Session | undefined> {
    for (;;) {
      const deletion = this.deleting.get(sessionId);
      if (deletion) {
        await deletion.catch(() => undefined);
        continue;
      }
      const session = this.sessions.get(sessionId);
      if (session) return session;
      let opening = this.opening.get(sessionId);
      if (!opening) {
        opening = this.loadFromStorage(sessionId).finally(() => this.opening.delete(sessionId));
        this.opening.set(sessionId, opening);
      }
      await opening;
      if (this.deleting.has(sessionId)) continue;
      return this.sessions.get(sessionId) ?? (create ? this.createSession(sessionId) : undefined);
    }
  }

  private createSession(sessionId: string): Session {
    const now = Date.now();
    const session = this.newSession(
      sessionId,
      { createdAtMs: now, agentLoopVersion: AGENT_LOOP_VERSION },
      { messageCount: 0, durableCount: 0, updatedAtMs: now },
    );
    this.unstored.add(session);
    return session;
  }

  private async loadFromStorage(sessionId: string): Promise<void> {
    const meta = await this.storage.meta(sessionId);
    if (meta && !this.sessions.has(sessionId)) this.newSession(sessionId, meta, meta);
  }

  private newSession(
    sessionId: string,
    stored: Pick<SessionMeta, "createdAtMs" | "agentLoopVersion">,
    counts: Pick<SessionMeta, "messageCount" | "durableCount" | "updatedAtMs">,
  ): Session {
    const session = new Session(sessionId, this.context, stored, counts);
    this.sessions.set(sessionId, session);
    return session;
  }

  private checkOpen(): void {
    if (this.closing)
      throw new SessionStoreError(
        Code.Unavailable,
        "the server is shutting down; retry on another",
      );
  }
}

function* pages(messages: string[], firstSeq: number): Generator<MessagePage> {
  let start = 0;
  let bytes = 0;
  for (let index = 0; index < messages.length; index++) {
    bytes += (messages[index] as string).length;
    if (bytes >= PAGE_BYTES || index === messages.length - 1) {
      yield { firstSeq: firstSeq + start, messages: messages.slice(start, index + 1) };
      start = index + 1;
      bytes = 0;
    }
  }
}

function encodePageToken(lastId: string): string {
  return Buffer.from(lastId, "utf8").toString("base64url");
}

function decodePageToken(token: string): string {
  if (token === "") return "";
  const lastId = Buffer.from(token, "base64url").toString("utf8");
  if (encodePageToken(lastId) !== token) {
    throw invalidArgument(
      "page_token is not one this server returned; pass next_page_token unchanged",
    );
  }
  return lastId;
}
