import type { SessionStoreError } from "../errors.js";
import type { Labels, Selector } from "../labels.js";
import type { AppendChain } from "./append-chain.js";
import type { StorageLevels } from "./storage-events.js";

/**
 * A storage backend: files, memory or a database. It keeps each tenant's sessions apart (the
 * same session id in two tenants is two sessions) and hands out one SessionStorage per tenant.
 */
export interface StorageBackend {
  /** Prepares the storage for use (directories, schema, connections). Called once, first. */
  open(): Promise<void>;

  /**
   * Writes and makes durable everything acknowledged, then releases every resource; nothing is
   * called after it. Sessions whose messages could not be written are logged, never hidden.
   */
  close(): Promise<void>;

  /**
   * The sessions of `tenant` (a name following the tenant rule, src/tenant.ts), or of the one
   * tenant of a server without authentication, "". Nothing done through it ever touches another
   * tenant's sessions.
   */
  tenant(tenant: string): SessionStorage;

  /** Every tenant that may hold sessions, "" among them, sorted (a copy walks them all). */
  tenants(): Promise<string[]>;

  /**
   * Calls `listener` whenever the storage becomes unable, or able again, to serve (a database
   * going down and coming back), until the returned function is called. A backend that is
   * available whenever its process is needs not have it.
   */
  watchHealth?(listener: (serving: boolean) => void): () => void;

  /** What the backend holds in memory now, for metrics (cheap: read at every scrape). */
  levels(): StorageLevels;
}

/**
 * One tenant's sessions, the storage boundary. A backend owns each session's log: it assigns
 * seqs, checks `expected_seq`, recognises a resent request, decides when a request is
 * acknowledged, and tells subscribers that a session changed, because only it sees every writer
 * (one process over a data directory, or many processes over one database). Everything above it
 * (validation, paging, watching, the gRPC server) is the same for every backend; every backend
 * passes test/store/conformance.ts.
 *
 * Messages are UTF-8 bytes (Buffers), as they came on the wire: they reach a backend validated
 * (each one JSON object, one line), and it stores and answers them byte for byte, never as
 * strings (a backend whose driver wants text converts at the driver). Readers see only acknowledged messages: a request that fails stores nothing anyone saw.
 */
export interface SessionStorage {
  /**
   * Appends one request's messages (possibly none) to a session, creating it when it does not
   * exist and the request has messages. Calls for one session are ordered as they are made: the
   * backend takes each in turn; `admitted` (when present) resolves once this request has its
   * place, and the caller makes the next call of a stream only after that. The returned `ack`
   * settles when the request is acknowledged: at once for a buffered request, once durable with
   * `sync`, and never before every earlier request of its session and of its chain is.
   *
   * Fails with ABORTED (and the actual length) when `expectedSeq` is not the session's length,
   * unless the messages stored from `expectedSeq` equal this request's first ones (a resend: the
   * rest is appended and the ack carries the original seqs); DATA_LOSS for a corrupt session;
   * RESOURCE_EXHAUSTED or UNAVAILABLE when storage fails. A failed request stores nothing unless
   * its error says that it may have been stored.
   */
  append(sessionId: string, messages: readonly Buffer[], options: AppendOptions): Appending;

  /**
   * The session's acknowledged messages in `range`, in order, as non-empty pages, buffered ones
   * included (read-your-writes). Nothing for an unknown session. DATA_LOSS, naming the seq, for
   * a stored record that is not what was appended. OUT_OF_RANGE (trimmedBefore) for a `fromSeq`
   * other than 0 below the session's first kept seq; 0 reads from the first kept message.
   */
  read(sessionId: string, range: ReadRange): AsyncIterable<MessagePage>;

  /** The session's metadata, or undefined when it does not exist. */
  meta(sessionId: string): Promise<SessionMeta | undefined>;

  /**
   * Sessions whose id starts with `prefix` and whose labels match `selector`, in `order`, after
   * the cursor `after`, at most `limit`.
   */
  list(query: ListQuery): Promise<SessionMeta[]>;

  /**
   * Deletes a session durably; resolves to whether it was deleted. Its requests not yet
   * acknowledged fail with NOT_FOUND, storing nothing, and its subscribers are told. Forks of it
   * stay whole. With `guard`, only a session last updated before `guard.updatedBeforeMs` is
   * deleted, decided atomically with the delete (a session appended to meanwhile stays).
   */
  delete(sessionId: string, guard?: DeleteGuard): Promise<boolean>;

  /**
   * Sets and removes (empty value) labels of a session, durably, when its labels revision is
   * `expectedRevision` (if given): the revision then grows by one. Answers the new meta.
   * NOT_FOUND for an unknown session; ABORTED (labelsRevisionMismatch) for another revision;
   * INVALID_ARGUMENT when the result is past the bounds (checkLabelBounds). Changing nothing
   * (every value already so) leaves the revision as it is.
   */
  setLabels(sessionId: string, change: Labels, expectedRevision?: number): Promise<SessionMeta>;

  /**
   * Creates `newSessionId` holding the source's messages [firstSeq, atSeq) at the same seqs,
   * durably, with the source's labels changed by `labels` and lineage (parent) set; the source's
   * buffered messages below `atSeq` are made durable first. Shares the stored messages rather
   * than copying them: its cost does not grow with `atSeq`. Appends, rewinds, trims and deletes
   * of either never change the other. NOT_FOUND for an unknown source, ALREADY_EXISTS
   * (sessionExists) for a taken `newSessionId`, OUT_OF_RANGE for an `atSeq` past the source's
   * length (pastTheEnd) or below its first kept seq (trimmedBefore).
   */
  fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta>;

  /**
   * Drops the messages from `toSeq` on, durably and atomically (a crash leaves the session as it
   * was before or after, nothing between), when the session's length is `expectedSeq` (if
   * given), and answers them. Ordered with appends: a request admitted before it is acknowledged
   * or failed first. Subscribers are told (`rewound`). NOT_FOUND for an unknown session, ABORTED
   * (lengthMismatch) for another length, OUT_OF_RANGE past the length or below the first kept
   * seq.
   */
  rewind(sessionId: string, toSeq: number, expectedSeq?: number): Promise<Rewound>;

  /**
   * Drops the messages before `beforeSeq`, durably and atomically; seqs do not change and the
   * session's first kept seq becomes `beforeSeq` (a `beforeSeq` at or below it changes
   * nothing). Does not count as an update (updatedAtMs stays). NOT_FOUND for an unknown
   * session, OUT_OF_RANGE past its length.
   */
  trim(sessionId: string, beforeSeq: number): Promise<Trimmed>;

  /**
   * The seq of the session's first kept message acknowledged at or after `timeMs` (its length
   * when there is none), for retention by age. Times are kept at least per written batch, so the
   * answer may be below the exact one, never above: a message younger than `timeMs` is never
   * counted older. NOT_FOUND for an unknown session.
   */
  firstSeqSince(sessionId: string, timeMs: number): Promise<number>;

  /**
   * Writes and makes durable what is acknowledged of one session, or of every session when
   * `sessionId` is undefined. For one session, fails as `append` does; for all, sessions that
   * fail are reported and the others flushed.
   */
  flush(sessionId?: string): Promise<FlushReport>;

  /**
   * Calls `listener` whenever the session's acknowledged log changes or it is deleted, until the
   * returned function is called. Works for sessions that do not exist yet.
   */
  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void;
}

export interface AppendOptions {
  /** The seq the first message must get; otherwise ABORTED (see `append`). */
  expectedSeq?: number;
  /** Acknowledge only once these messages, and every earlier one, are durable. */
  sync: boolean;
  /** The stream the request came on: once one of its requests fails, later ones are refused. */
  chain?: AppendChain;
  /** When the request creates the session: its creation time (now by default; a copy keeps the original's). */
  createdAtMs?: number;
  /** When the request creates the session: its labels (checked: no empty values, in bounds). */
  labels?: Labels;
  /**
   * When the request creates the session: the seq of its first message, as if the ones before
   * it were trimmed (a copy of a trimmed session keeps its seqs). A session not yet created then
   * counts as this long for `expectedSeq`.
   */
  firstSeq?: number;
}

/** The condition of a guarded delete (retention of idle sessions). */
export interface DeleteGuard {
  /** Delete only when the session was last updated before this time. */
  updatedBeforeMs: number;
}

/** What a rewind dropped, and the session after it. */
export interface Rewound {
  /** The dropped messages, oldest first; the first had seq `toSeq`. */
  dropped: Buffer[];
  meta: SessionMeta;
}

/** What a trim dropped, and the session after it. */
export interface Trimmed {
  /** How many messages this call dropped. */
  trimmed: number;
  meta: SessionMeta;
}

/** What `append` answers: the acknowledgement, or a promise of it. */
export interface Appended {
  ack: AppendAck | Promise<AppendAck>;
}

/**
 * A request on its way in: `Appended` when it got its place at once (the common case: no promise
 * is made for it), or a promise of it while the backend loads the session or waits for room.
 */
export type Appending = Appended | Promise<Appended>;

export interface AppendAck {
  sessionId: string;
  /** Seq of the request's first message. */
  firstSeq: number;
  /** The session's length after the request. */
  nextSeq: number;
  /** Messages [0, durableCount) are durable. */
  durableCount: number;
}

export interface ReadRange {
  /** First seq wanted; 0 means the first kept one (see SessionMeta.firstSeq). */
  fromSeq: number;
  /** At most this many messages; 0: no limit. */
  limit: number;
  /** With `limit`: the last `limit` messages from `fromSeq` on. */
  last: boolean;
}

export interface MessagePage {
  firstSeq: number;
  messages: Buffer[];
}

/** A session as the API reports it: acknowledged messages, buffered ones included. */
export interface SessionMeta {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  messageCount: number;
  /** Messages [0, durableCount) are durable. */
  durableCount: number;
  /** When a message was last appended, or the session was created, forked or rewound. */
  updatedAtMs: number;
  /** Its labels, keys sorted. */
  labels: Labels;
  /** Grows by one at every change of the labels; 0 for a session never labelled. */
  labelsRevision: number;
  /** The session it was forked from, and at which seq; undefined when it was not. */
  parent: { sessionId: string; seq: number } | undefined;
  /** The first kept seq: messages before it were trimmed. */
  firstSeq: number;
}

/** The orders of a listing. */
export type ListOrder = "id" | "updated-desc";

export interface ListQuery {
  prefix: string;
  /** Requirements every listed session's labels meet; empty: every session. */
  selector: Selector;
  order: ListOrder;
  /**
   * Exclusive lower bound in `order`: the last session of the previous page (for "id" only its
   * id counts); undefined to start at the beginning.
   */
  after: ListCursor | undefined;
  limit: number;
}

/** A position in a listing. */
export interface ListCursor {
  sessionId: string;
  updatedAtMs: number;
}

export interface FlushReport {
  /** Messages this call wrote. */
  flushed: number;
  /** Sessions that could not be flushed (only when flushing every session). */
  failures: FlushFailure[];
}

export interface FlushFailure {
  sessionId: string;
  error: SessionStoreError;
}

/**
 * What a subscriber hears: the session may have new acknowledged messages (read to find out), it
 * was deleted, its stored log was replaced by another (a file restored outside the server), or
 * it was rewound to `toSeq` (messages from it on were dropped; new ones may follow).
 */
export type SessionChange =
  | { kind: "appended" }
  | { kind: "deleted" }
  | { kind: "replaced" }
  | { kind: "rewound"; toSeq: number };

/**
 * What became of a request whose storage operation failed, as its error tells the client: either
 * nothing of it was stored (retry freely) or it may have been (resend it with expected_seq).
 */
export type FailedOutcome = "nothing stored" | "maybe stored";

/** The agent_loop_version this server records for sessions it creates. */
export const AGENT_LOOP_VERSION = "sessionstore-0.1.0";

/** A listing by id of the sessions whose id starts with `prefix`, after `afterId` ("": from the start). */
export function listByIdQuery(prefix: string, afterId: string, limit: number): ListQuery {
  return {
    prefix,
    selector: [],
    order: "id",
    after: afterId === "" ? undefined : { sessionId: afterId, updatedAtMs: 0 },
    limit,
  };
}
