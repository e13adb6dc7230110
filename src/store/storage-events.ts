import type { Code } from "../errors.js";

/**
 * What a storage backend tells an observer (metrics, traces) about its work, so that neither
 * prom-client nor OpenTelemetry enters the storage code. A backend calls these as each piece of
 * work ends, in the asynchronous context that scheduled it: a batched write continues the context
 * of the request that started its batch, although it carries the messages of many requests.
 * They run on the write path, once per write rather than per message: implementations must be
 * cheap and must not throw.
 */
export interface StorageEvents {
  /**
   * `messages` (`bytes` of them, as stored) were written in `seconds`: lines appended to a
   * session file, or, on PostgreSQL, an append transaction, its commit included.
   */
  wrote(seconds: number, messages: number, bytes: number): void;

  /**
   * What was written became durable in `seconds`: an fsync of a session file, or, on PostgreSQL,
   * a synchronous commit (of a `sync` append's transaction, which `wrote` reported too, or of a
   * flush).
   */
  synced(seconds: number): void;

  /**
   * A storage operation failed with `code` (UNAVAILABLE, RESOURCE_EXHAUSTED, DATA_LOSS): a write,
   * a sync, opening or deleting a session, or damage found in stored data. Each failure once,
   * however many requests it fails.
   */
  failed(code: Code): void;
}

/** The observer of a backend nobody observes. */
export const UNOBSERVED: StorageEvents = {
  wrote() {},
  synced() {},
  failed() {},
};

/** One observer telling each of `observers` (metrics and traces), or none when there is none. */
export function allOf(observers: readonly StorageEvents[]): StorageEvents | undefined {
  if (observers.length <= 1) return observers[0];
  return {
    wrote: (seconds, messages, bytes) => {
      for (const observer of observers) observer.wrote(seconds, messages, bytes);
    },
    synced: (seconds) => {
      for (const observer of observers) observer.synced(seconds);
    },
    failed: (code) => {
      for (const observer of observers) observer.failed(code);
    },
  };
}

/** How much a backend holds in memory now (read when metrics are scraped, never pushed). */
export interface StorageLevels {
  /** Bytes of acknowledged messages not yet written (files) or committed (PostgreSQL). */
  bufferedBytes: number;
  /** Sessions whose state the backend keeps in memory (none on PostgreSQL, which keeps none). */
  openSessions: number;
}

/** Seconds since `startedMs`, a `performance.now()` reading. */
export function secondsSince(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}
