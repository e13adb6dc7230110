import type { SessionStoreError } from "../../src/errors.js";
import type { Labels } from "../../src/labels.js";
import { MemoryStorage } from "../../src/store/memory/memory-storage.js";
import type {
  Appending,
  AppendOptions,
  DeleteGuard,
  FlushReport,
  ListQuery,
  MessagePage,
  ReadRange,
  Rewound,
  SessionChange,
  SessionMeta,
  SessionStorage,
  StorageBackend,
  Trimmed,
} from "../../src/store/storage.js";
import type { StorageLevels } from "../../src/store/storage-events.js";

type Method =
  | "append"
  | "ack"
  | "read"
  | "meta"
  | "list"
  | "delete"
  | "flush"
  | "setLabels"
  | "fork"
  | "rewind"
  | "trim"
  | "firstSeqSince";

/** One call the wrapper saw: which method, for which session, with what options. */
export interface StorageCall {
  method: Method;
  sessionId?: string;
  options?: AppendOptions;
  query?: ListQuery;
}

/**
 * The memory backend behind a wrapper that records every call and fails the ones a test asks to
 * fail: `append` before the request is taken, its acknowledgement after ("ack"), `read` after
 * some pages, and the other calls. It lets the session layer and the server be tested against
 * storage failures that a real backend produces only rarely. It is the backend and its tenant ""
 * in one; other tenants are the memory backend's, without faults.
 */
export class FaultyStorage implements StorageBackend, SessionStorage {
  readonly backend = new MemoryStorage();
  readonly calls: StorageCall[] = [];
  readonly #faults = new Map<
    Method,
    { error: SessionStoreError; afterPages: number; times: number }
  >();
  #subscribers = 0;

  /** Makes the next `times` calls of `method` fail with `error` (reads after `afterPages` pages). */
  fail(
    method: Method,
    error: SessionStoreError,
    options: { times?: number; afterPages?: number } = {},
  ): void {
    this.#faults.set(method, {
      error,
      afterPages: options.afterPages ?? 0,
      times: options.times ?? 1,
    });
  }

  /** Subscriptions not yet ended. */
  get subscriberCount(): number {
    return this.#subscribers;
  }

  /** Tells a session's subscribers what the memory backend never says by itself. */
  announce(sessionId: string, change: SessionChange): void {
    for (const listener of this.#listeners.get(sessionId) ?? []) listener(change);
  }

  readonly #listeners = new Map<string, Set<(change: SessionChange) => void>>();

  async open(): Promise<void> {
    await this.backend.open();
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  tenant(tenant: string): SessionStorage {
    return tenant === "" ? this : this.backend.tenant(tenant);
  }

  levels(): StorageLevels {
    return this.backend.levels();
  }

  tenants(): Promise<string[]> {
    return this.backend.tenants();
  }

  /** The tenant "" of the memory backend, which this wraps. */
  get inner(): SessionStorage {
    return this.backend.tenant("");
  }

  append(sessionId: string, messages: readonly Buffer[], options: AppendOptions): Appending {
    this.calls.push({ method: "append", sessionId, options });
    this.#throwIfFailing("append");
    const appended = this.inner.append(sessionId, messages, options);
    const ackFault = this.#take("ack");
    if (!ackFault) return appended;
    return { ack: Promise.reject(ackFault) };
  }

  async *read(sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    this.calls.push({ method: "read", sessionId });
    const fault = this.#faults.get("read");
    let pages = 0;
    for await (const page of this.inner.read(sessionId, range)) {
      if (fault && pages >= fault.afterPages) this.#throwIfFailing("read");
      yield page;
      pages++;
    }
    if (fault && pages >= fault.afterPages) this.#throwIfFailing("read");
  }

  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    this.calls.push({ method: "meta", sessionId });
    this.#throwIfFailing("meta");
    return this.inner.meta(sessionId);
  }

  async list(query: ListQuery): Promise<SessionMeta[]> {
    this.calls.push({ method: "list", query });
    this.#throwIfFailing("list");
    return this.inner.list(query);
  }

  async delete(sessionId: string, guard?: DeleteGuard): Promise<boolean> {
    this.calls.push({ method: "delete", sessionId });
    this.#throwIfFailing("delete");
    return this.inner.delete(sessionId, guard);
  }

  async setLabels(
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    this.calls.push({ method: "setLabels", sessionId });
    this.#throwIfFailing("setLabels");
    return this.inner.setLabels(sessionId, change, expectedRevision);
  }

  async fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    this.calls.push({ method: "fork", sessionId });
    this.#throwIfFailing("fork");
    return this.inner.fork(sessionId, atSeq, newSessionId, labels);
  }

  async rewind(sessionId: string, toSeq: number, expectedSeq?: number): Promise<Rewound> {
    this.calls.push({ method: "rewind", sessionId });
    this.#throwIfFailing("rewind");
    const rewound = await this.inner.rewind(sessionId, toSeq, expectedSeq);
    this.announce(sessionId, { kind: "rewound", toSeq });
    return rewound;
  }

  async trim(sessionId: string, beforeSeq: number): Promise<Trimmed> {
    this.calls.push({ method: "trim", sessionId });
    this.#throwIfFailing("trim");
    return this.inner.trim(sessionId, beforeSeq);
  }

  async firstSeqSince(sessionId: string, timeMs: number): Promise<number> {
    this.calls.push({ method: "firstSeqSince", sessionId });
    this.#throwIfFailing("firstSeqSince");
    return this.inner.firstSeqSince(sessionId, timeMs);
  }

  async flush(sessionId?: string): Promise<FlushReport> {
    this.calls.push({ method: "flush", ...(sessionId === undefined ? {} : { sessionId }) });
    this.#throwIfFailing("flush");
    return this.inner.flush();
  }

  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void {
    this.#subscribers++;
    let listeners = this.#listeners.get(sessionId);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(sessionId, listeners);
    }
    listeners.add(listener);
    const stop = this.inner.subscribe(sessionId, listener);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.#subscribers--;
      listeners.delete(listener);
      stop();
    };
  }

  #take(method: Method): SessionStoreError | undefined {
    const fault = this.#faults.get(method);
    if (!fault) return undefined;
    if (--fault.times <= 0) this.#faults.delete(method);
    return fault.error;
  }

  #throwIfFailing(method: Method): void {
    const error = this.#take(method);
    if (error) throw error;
  }
}
