import type { Logger } from "pino";
import { Code, invalidArgument, SessionStoreError } from "../errors.js";
import { checkLabelBounds, checkLabelChange, type Labels, parseSelector } from "../labels.js";
import { checkSessionId } from "../session-id.js";
import type { AppendChain } from "../store/append-chain.js";
import { bufferedSize } from "../store/buffer-budget.js";
import type {
  Appended,
  Appending,
  FlushReport,
  ListOrder,
  MessagePage,
  ReadRange,
  Rewound,
  SessionChange,
  SessionMeta,
  SessionStorage,
  StorageBackend,
  Trimmed,
} from "../store/storage.js";
import { checkTenant } from "../tenant.js";
import { checkDialectLabel } from "./dialects.js";
import { loadWindow } from "./load-window.js";
import { decodePageToken, encodePageToken } from "./page-tokens.js";
import type { SessionEvents } from "./session-events.js";
import { type MessageLimits, normalizeMessages } from "./validation.js";
import { Wakeup } from "./wakeup.js";

export interface SessionServiceOptions extends MessageLimits {
  /** `sync`: every append is acknowledged only once durable, as if it asked for `sync`. */
  durability: "buffered" | "sync";
}

export interface AppendRequestOptions {
  expectedSeq?: number;
  sync: boolean;
  /** The stream the request came on (see AppendChain). */
  chain?: AppendChain;
  /** Labels for the session when the request creates it. */
  labels?: Labels;
}

export interface ListOptions {
  pageSize: number;
  pageToken: string;
  prefix: string;
  /** A label selector in Kubernetes syntax; empty: every session. */
  labelSelector: string;
  order: ListOrder;
}

/** A Load: a range of seqs, or a context window of the newest messages. */
export interface LoadOptions extends ReadRange {
  /** A window of at most this many bytes of the newest messages; 0: no bound. */
  maxBytes: number;
  /** A window that starts at a turn and splits no tool call from its result. */
  wholeTurns: boolean;
}

/** Pages of a Load; with whole turns, the last one reports the calls left without a result. */
export interface LoadedPage extends MessagePage {
  danglingCallIds?: string[];
}

/** What a watcher is told: new messages, or that the session was rewound below what it saw. */
export type WatchEvent = MessagePage | { rewoundTo: number };

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/**
 * The service's semantics over any storage backend: validation and limits of what clients send,
 * paging, watching, and refusing new work once shutting down. The backend owns each session's
 * order (see SessionStorage).
 */
export class SessionService {
  #closing = false;
  #watchers = 0;

  constructor(
    private readonly backend: StorageBackend,
    private readonly options: SessionServiceOptions,
    private readonly log: Logger,
    /** Told of every acknowledged append (metrics); without it, acks are not looked at. */
    private readonly events?: SessionEvents,
  ) {}

  /** Watch calls in progress. */
  get watcherCount(): number {
    return this.#watchers;
  }

  /**
   * Validates one request's messages and hands them to storage. Nothing of an invalid request is
   * stored. The caller makes the next call of a stream once this one has its place (see
   * SessionStorage.append).
   */
  append(
    tenant: string,
    sessionId: string,
    messages: readonly Buffer[],
    options: AppendRequestOptions,
  ): Appending {
    checkSessionId(sessionId);
    this.#checkOpen();
    const normalized = normalizeMessages(messages, this.options);
    if (options.labels) checkNewLabels(options.labels);
    const appending = this.#storage(tenant).append(sessionId, normalized, {
      ...options,
      sync: options.sync || this.options.durability === "sync",
    });
    const { events } = this;
    if (!events) return appending;
    return whenAcknowledged(appending, () =>
      events.appended(tenant, normalized.length, bufferedSize(normalized)),
    );
  }

  /**
   * A session's acknowledged messages in `options`' range, or its context window, in pages;
   * nothing when it is unknown.
   */
  load(tenant: string, sessionId: string, options: LoadOptions): AsyncIterable<LoadedPage> {
    checkSessionId(sessionId);
    const storage = this.#storage(tenant);
    if (options.maxBytes === 0 && !options.wholeTurns) return storage.read(sessionId, options);
    return loadWindow(storage, sessionId, options);
  }

  /** A session's metadata, or undefined when it does not exist. */
  async meta(tenant: string, sessionId: string): Promise<SessionMeta | undefined> {
    checkSessionId(sessionId);
    return this.#storage(tenant).meta(sessionId);
  }

  /**
   * One page of the sessions the options select, in their order, and the token of the next page
   * ("" after the last).
   */
  async list(
    tenant: string,
    options: ListOptions,
  ): Promise<{ sessions: SessionMeta[]; nextPageToken: string }> {
    const pageSize = Math.min(options.pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    const selector = parseSelector(options.labelSelector);
    const listing = {
      prefix: options.prefix,
      labelSelector: options.labelSelector,
      order: options.order,
    };
    const found = await this.#storage(tenant).list({
      prefix: options.prefix,
      selector,
      order: options.order,
      after: decodePageToken(options.pageToken, listing),
      limit: pageSize + 1,
    });
    const sessions = found.slice(0, pageSize);
    const last = sessions.at(-1);
    return {
      sessions,
      nextPageToken: found.length > pageSize && last ? encodePageToken(last, listing) : "",
    };
  }

  /** Sets or removes (empty value) labels of a session; the new meta. */
  async setLabels(
    tenant: string,
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    checkSessionId(sessionId);
    this.#checkOpen();
    checkLabelChange(change);
    checkDialectLabel(change);
    return this.#storage(tenant).setLabels(sessionId, change, expectedRevision);
  }

  /** Forks `sessionId` at `atSeq` into `newSessionId`; the fork's meta. */
  async fork(
    tenant: string,
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    checkSessionId(sessionId);
    checkSessionId(newSessionId, "new_session_id");
    this.#checkOpen();
    checkLabelChange(labels);
    checkDialectLabel(labels);
    return this.#storage(tenant).fork(sessionId, atSeq, newSessionId, labels);
  }

  /** Drops a session's messages from `toSeq` on, when its length is `expectedSeq` (if given). */
  async rewind(
    tenant: string,
    sessionId: string,
    toSeq: number,
    expectedSeq?: number,
  ): Promise<Rewound> {
    checkSessionId(sessionId);
    this.#checkOpen();
    return this.#storage(tenant).rewind(sessionId, toSeq, expectedSeq);
  }

  /** Drops a session's messages before `beforeSeq`. */
  async trim(tenant: string, sessionId: string, beforeSeq: number): Promise<Trimmed> {
    checkSessionId(sessionId);
    this.#checkOpen();
    return this.#storage(tenant).trim(sessionId, beforeSeq);
  }

  /** Deletes a session; resolves to whether it existed. */
  async delete(tenant: string, sessionId: string): Promise<boolean> {
    checkSessionId(sessionId);
    this.#checkOpen();
    return this.#storage(tenant).delete(sessionId);
  }

  /** Writes and fsyncs the buffer of one session, or of every session when `sessionId` is "". */
  async flush(tenant: string, sessionId: string): Promise<FlushReport> {
    if (sessionId === "") return this.#storage(tenant).flush();
    checkSessionId(sessionId);
    return this.#storage(tenant).flush(sessionId);
  }

  /**
   * A session's messages from `fromSeq` on, then each new one as it is acknowledged, until the
   * session is deleted (NOT_FOUND) or replaced (ABORTED), or `signal` aborts. Works for sessions
   * not created yet. A rewind below what was streamed is told (`rewoundTo`), and the stream goes
   * on from there.
   */
  async *watch(
    tenant: string,
    sessionId: string,
    fromSeq: number,
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    checkSessionId(sessionId);
    this.#checkOpen();
    const storage = this.#storage(tenant);
    const wakeup = new Wakeup();
    let ended: SessionChange | undefined;
    /** The lowest seq a rewind went back to since the watcher last looked. */
    let rewoundTo: number | undefined;
    const unsubscribe = storage.subscribe(sessionId, (change) => {
      if (change.kind === "rewound") rewoundTo = Math.min(rewoundTo ?? change.toSeq, change.toSeq);
      else if (change.kind !== "appended") ended ??= change;
      wakeup.wake();
    });
    this.#watchers++;
    try {
      let next = fromSeq;
      while (!signal?.aborted) {
        if (ended) throw watchEnded(sessionId, ended);
        if (rewoundTo !== undefined) {
          if (rewoundTo < next) {
            next = rewoundTo;
            yield { rewoundTo };
          }
          rewoundTo = undefined;
        }
        let caughtUp = true;
        for await (const page of storage.read(sessionId, {
          fromSeq: next,
          limit: 0,
          last: false,
        })) {
          if (ended || rewoundTo !== undefined) break;
          yield page;
          next = page.firstSeq + page.messages.length;
          caughtUp = false;
        }
        if (caughtUp) await wakeup.wait(signal);
      }
    } finally {
      this.#watchers--;
      unsubscribe();
    }
  }

  /**
   * Calls `listener` when the storage stops or starts again being able to serve (a database
   * down and back); a storage that cannot fail so never calls it.
   */
  watchHealth(listener: (serving: boolean) => void): () => void {
    return this.backend.watchHealth?.(listener) ?? (() => undefined);
  }

  /** Refuses new work, then writes and fsyncs every buffer and closes the storage. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.backend.close();
    this.log.debug("sessions closed");
  }

  /** The caller's tenant's sessions; PERMISSION_DENIED for a tenant name the rule refuses. */
  #storage(tenant: string): SessionStorage {
    checkTenant(tenant);
    return this.backend.tenant(tenant);
  }

  #checkOpen(): void {
    if (this.#closing) {
      throw new SessionStoreError(
        Code.Unavailable,
        "the server is shutting down; retry on another",
      );
    }
  }
}

/**
 * `appending` with `acknowledged` called once its acknowledgement comes. An ack ready at once
 * (a buffered append, the common case) costs no promise; one still to come gets its own.
 */
function whenAcknowledged(appending: Appending, acknowledged: () => void): Appending {
  if (appending instanceof Promise) {
    return appending.then((appended) => whenAcknowledged(appended, acknowledged) as Appended);
  }
  const { ack } = appending;
  if (!(ack instanceof Promise)) {
    acknowledged();
    return appending;
  }
  const observed = ack.then((done) => {
    acknowledged();
    return done;
  });
  // As the storage's own ack: a failure is the caller's to handle when it awaits.
  observed.catch(() => undefined);
  return { ack: observed };
}

function watchEnded(sessionId: string, change: SessionChange): SessionStoreError {
  return change.kind === "deleted"
    ? new SessionStoreError(Code.NotFound, `session ${sessionId} was deleted`)
    : new SessionStoreError(
        Code.Aborted,
        `session ${sessionId} was replaced outside the server; watch it again from seq 0`,
      );
}

/** Labels given when a session is created: set, not removed (no empty values). */
function checkNewLabels(labels: Labels): void {
  checkLabelChange(labels);
  checkDialectLabel(labels);
  for (const [key, value] of Object.entries(labels)) {
    if (value === "") {
      throw invalidArgument(
        `label ${key} has an empty value; labels of a new session need values (SetLabels removes one with an empty value)`,
      );
    }
  }
  checkLabelBounds(labels);
}
