import type { SessionStoreError } from "../errors.js";
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
 * Messages reach a backend validated (each one JSON object, one line); it stores them byte for
 * byte. Readers see only acknowledged messages: a request that fails stores nothing anyone saw.
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
  append(sessionId: string, messages: readonly string[], options: AppendOptions): Appending;

  /**
   * The session's acknowledged messages in `range`, in order, as non-empty pages, buffered ones
   * included (read-your-writes). Nothing for an unknown session. DATA_LOSS, naming the seq, for
   * a stored record that is not what was appended.
   */
  read(sessionId: string, range: ReadRange): AsyncIterable<MessagePage>;

  /** The session's metadata, or undefined when it does not exist. */
  meta(sessionId: string): Promise<SessionMeta | undefined>;

  /** Sessions whose id starts with `prefix` and sorts after `after`, by id, at most `limit`. */
  list(query: ListQuery): Promise<SessionMeta[]>;

  /**
   * Deletes a session durably; resolves to whether it existed. Its requests not yet acknowledged
   * fail with NOT_FOUND, storing nothing, and its subscribers are told.
   */
  delete(sessionId: string): Promise<boolean>;

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
  /** First seq wanted. */
  fromSeq: number;
  /** At most this many messages; 0: no limit. */
  limit: number;
  /** With `limit`: the last `limit` messages from `fromSeq` on. */
  last: boolean;
}

export interface MessagePage {
  firstSeq: number;
  messages: string[];
}

/** A session as the API reports it: acknowledged messages, buffered ones included. */
export interface SessionMeta {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  messageCount: number;
  /** Messages [0, durableCount) are durable. */
  durableCount: number;
  updatedAtMs: number;
}

export interface ListQuery {
  prefix: string;
  /** Exclusive lower bound on the id; empty to start at the beginning. */
  after: string;
  limit: number;
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
 * was deleted, or its stored log was replaced by another (a file restored outside the server).
 */
export type SessionChange = { kind: "appended" } | { kind: "deleted" } | { kind: "replaced" };

/**
 * What became of a request whose storage operation failed, as its error tells the client: either
 * nothing of it was stored (retry freely) or it may have been (resend it with expected_seq).
 */
export type FailedOutcome = "nothing stored" | "maybe stored";

/** The agent_loop_version this server records for sessions it creates. */
export const AGENT_LOOP_VERSION = "sessionstore-0.1.0";
