import { lengthMismatch } from "../../errors.js";
import { pagesOf, resolveRange } from "../read-range.js";
import {
  AGENT_LOOP_VERSION,
  type Appended,
  type AppendOptions,
  type FlushReport,
  type ListQuery,
  type MessagePage,
  type ReadRange,
  type SessionChange,
  type SessionMeta,
  type SessionStorage,
  type StorageBackend,
} from "../storage.js";
import type { StorageLevels } from "../storage-events.js";
import { Subscribers } from "../subscribers.js";

interface MemorySession {
  createdAtMs: number;
  updatedAtMs: number;
  messages: string[];
}

/**
 * Keeps logs in process memory: for tests and for deployments that need no persistence. Every
 * append is decided when it is made, so nothing waits and nothing fails after admission. Nothing
 * survives the process, so no message is ever counted durable (durable_count stays 0), and a
 * `sync` request is acknowledged at once: there is nothing to wait for.
 */
export class MemoryStorage implements StorageBackend {
  readonly #tenants = new Map<string, MemoryTenant>();

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  tenant(tenant: string): SessionStorage {
    let sessions = this.#tenants.get(tenant);
    if (!sessions) {
      sessions = new MemoryTenant();
      this.#tenants.set(tenant, sessions);
    }
    return sessions;
  }

  async tenants(): Promise<string[]> {
    return [...new Set(["", ...this.#tenants.keys()])].sort();
  }

  /** Nothing waits to be written: every session is in memory, and only there. */
  levels(): StorageLevels {
    let openSessions = 0;
    for (const tenant of this.#tenants.values()) openSessions += tenant.sessionCount;
    return { bufferedBytes: 0, openSessions };
  }
}

/** One tenant's sessions in memory. */
class MemoryTenant implements SessionStorage {
  readonly #sessions = new Map<string, MemorySession>();
  readonly #subscribers = new Subscribers();

  get sessionCount(): number {
    return this.#sessions.size;
  }

  append(sessionId: string, messages: readonly string[], options: AppendOptions): Appended {
    options.chain?.checkOpen();
    let session = this.#sessions.get(sessionId);
    const length = session?.messages.length ?? 0;
    const { expectedSeq } = options;
    let firstSeq = length;
    let added = messages;
    if (expectedSeq !== undefined && expectedSeq !== length) {
      const stored = session?.messages ?? [];
      const overlap = Math.min(messages.length, length - expectedSeq);
      const isResend =
        expectedSeq < length &&
        messages.length > 0 &&
        messages.slice(0, overlap).every((message, i) => message === stored[expectedSeq + i]);
      if (!isResend) throw lengthMismatch(sessionId, expectedSeq, length);
      firstSeq = expectedSeq;
      added = messages.slice(overlap);
    }
    if (added.length > 0) {
      const now = Date.now();
      if (!session) {
        session = { createdAtMs: options.createdAtMs ?? now, updatedAtMs: now, messages: [] };
        this.#sessions.set(sessionId, session);
      }
      session.messages.push(...added);
      session.updatedAtMs = now;
      this.#subscribers.notify(sessionId, { kind: "appended" });
    }
    const nextSeq = firstSeq + messages.length;
    return { ack: { sessionId, firstSeq, nextSeq, durableCount: 0 } };
  }

  async *read(sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    const messages = this.#sessions.get(sessionId)?.messages ?? [];
    const { from, to } = resolveRange(range, messages.length);
    yield* pagesOf(messages.slice(from, to), from);
  }

  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    const session = this.#sessions.get(sessionId);
    return session && toMeta(sessionId, session);
  }

  async list(query: ListQuery): Promise<SessionMeta[]> {
    return [...this.#sessions.keys()]
      .filter((id) => id.startsWith(query.prefix) && id > query.after)
      .sort()
      .slice(0, query.limit)
      .map((id) => toMeta(id, this.#sessions.get(id) as MemorySession));
  }

  async delete(sessionId: string): Promise<boolean> {
    const existed = this.#sessions.delete(sessionId);
    if (existed) this.#subscribers.notify(sessionId, { kind: "deleted" });
    return existed;
  }

  /** Nothing is ever buffered here. */
  async flush(): Promise<FlushReport> {
    return { flushed: 0, failures: [] };
  }

  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void {
    return this.#subscribers.add(sessionId, listener);
  }
}

function toMeta(sessionId: string, session: MemorySession): SessionMeta {
  return {
    sessionId,
    createdAtMs: session.createdAtMs,
    agentLoopVersion: AGENT_LOOP_VERSION,
    messageCount: session.messages.length,
    durableCount: 0,
    updatedAtMs: session.updatedAtMs,
  };
}
