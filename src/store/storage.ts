/**
 * The storage boundary. Everything above it (buffers, ordering, flush scheduling, the gRPC
 * server) talks to a session's stored log only through this interface, so a backend may keep
 * logs in files, in memory or in a database. Every backend passes test/store/conformance.ts.
 *
 * The caller serializes writes to one session (one `write` at a time per session id); reads,
 * metadata and listing may run concurrently with writes and must see whole messages only.
 */
export interface SessionStorage {
  /** Prepares the storage for use (directories, indexes). Called once, before anything else. */
  open(): Promise<void>;

  /** Releases every resource. Nothing is called after it. */
  close(): Promise<void>;

  /** The stored metadata of a session, or undefined when the session does not exist. */
  meta(sessionId: string): Promise<StoredSessionMeta | undefined>;

  /**
   * Appends `messages` (possibly none) to a session's log, creating the session when it does not
   * exist. `firstSeq` must equal the stored message count: the caller assigns seqs. Each message is
   * one line of JSON with no CR/LF. With `sync`, resolves only once the whole log is durable.
   * Rejects with a SessionStoreError (UNAVAILABLE, RESOURCE_EXHAUSTED) when storage fails; then
   * nothing of this call counts as stored and the caller may retry it.
   */
  write(
    sessionId: string,
    firstSeq: number,
    messages: readonly string[],
    options: WriteOptions,
  ): Promise<void>;

  /**
   * Reads `count` stored messages from `fromSeq` on, in order, as pages. The range must lie within
   * the stored count. Rejects with DATA_LOSS (naming the seq) when a stored record is corrupt.
   */
  read(sessionId: string, fromSeq: number, count: number): AsyncIterable<string[]>;

  /** Stored sessions whose id starts with `prefix` and sorts after `after`, by id, at most `limit`. */
  list(query: ListQuery): Promise<StoredSessionMeta[]>;

  /** Deletes a session durably; resolves to whether it existed. */
  delete(sessionId: string): Promise<boolean>;
}

export interface StoredSessionMeta {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  /** Messages stored (all of them durable once a sync write has covered them). */
  messageCount: number;
  /** Messages known to be durable: [0, durableCount). */
  durableCount: number;
  updatedAtMs: number;
}

export interface WriteOptions {
  sync: boolean;
  /** Creation time to record when this write creates the session. */
  createdAtMs: number;
}

export interface ListQuery {
  prefix: string;
  /** Exclusive lower bound on the id; empty to start at the beginning. */
  after: string;
  limit: number;
}

/** The agent_loop_version this server records for sessions it creates. */
export const AGENT_LOOP_VERSION = "sessionstore-0.1.0";
