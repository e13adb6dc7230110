import {
  labelsRevisionMismatch,
  lengthMismatch,
  sessionExists,
  sessionNotFound,
} from "../../errors.js";
import { applyLabelChange, type Labels, sameLabels, sortedLabels } from "../../labels.js";
import { checkForkPoint, checkRewind, checkTrim, readStart } from "../log-bounds.js";
import { pagesOf, resolveRange } from "../read-range.js";
import { type CatalogEntry, SessionCatalog } from "../session-catalog.js";
import {
  AGENT_LOOP_VERSION,
  type Appended,
  type AppendOptions,
  type DeleteGuard,
  type FlushReport,
  type ListQuery,
  type MessagePage,
  type ReadRange,
  type Rewound,
  type SessionChange,
  type SessionMeta,
  type SessionStorage,
  type StorageBackend,
  type Trimmed,
} from "../storage.js";
import type { StorageLevels } from "../storage-events.js";
import { Subscribers } from "../subscribers.js";
import { MemoryLog } from "./memory-log.js";

interface MemorySession {
  createdAtMs: number;
  updatedAtMs: number;
  log: MemoryLog;
  labels: Labels;
  labelsRevision: number;
  parent: SessionMeta["parent"];
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
  readonly #catalog = new SessionCatalog();
  readonly #subscribers = new Subscribers();

  get sessionCount(): number {
    return this.#sessions.size;
  }

  append(sessionId: string, messages: readonly Buffer[], options: AppendOptions): Appended {
    options.chain?.checkOpen();
    let session = this.#sessions.get(sessionId);
    const length = session?.log.length ?? options.firstSeq ?? 0;
    const { expectedSeq } = options;
    let firstSeq = length;
    let added = messages;
    if (expectedSeq !== undefined && expectedSeq !== length) {
      const stored = session?.log.slice(expectedSeq, length) ?? [];
      const overlap = Math.min(messages.length, length - expectedSeq);
      const isResend =
        expectedSeq < length &&
        expectedSeq >= (session?.log.firstSeq ?? 0) &&
        messages.length > 0 &&
        messages.slice(0, overlap).every((message, i) => stored[i]?.equals(message));
      if (!isResend) throw lengthMismatch(sessionId, expectedSeq, length);
      firstSeq = expectedSeq;
      added = messages.slice(overlap);
    }
    if (added.length > 0) {
      const now = Date.now();
      if (!session) {
        session = this.#create(sessionId, {
          createdAtMs: options.createdAtMs ?? now,
          log: new MemoryLog([], options.firstSeq ?? 0, options.firstSeq ?? 0),
          labels: sortedLabels(options.labels ?? {}),
          parent: undefined,
        });
      }
      session.log.append(added, now);
      this.#touch(sessionId, session, now);
      this.#subscribers.notify(sessionId, { kind: "appended" });
    }
    const nextSeq = firstSeq + messages.length;
    return { ack: { sessionId, firstSeq, nextSeq, durableCount: 0 } };
  }

  async *read(sessionId: string, range: ReadRange): AsyncGenerator<MessagePage> {
    const session = this.#sessions.get(sessionId);
    if (!session) return;
    const { log } = session;
    const fromSeq = readStart(sessionId, range.fromSeq, log);
    const { from, to } = resolveRange({ ...range, fromSeq }, log.length);
    yield* pagesOf(log.slice(from, to), from);
  }

  async meta(sessionId: string): Promise<SessionMeta | undefined> {
    const session = this.#sessions.get(sessionId);
    return session && toMeta(sessionId, session);
  }

  async list(query: ListQuery): Promise<SessionMeta[]> {
    return this.#catalog
      .list(query)
      .map((id) => toMeta(id, this.#sessions.get(id) as MemorySession));
  }

  async delete(sessionId: string, guard?: DeleteGuard): Promise<boolean> {
    const session = this.#sessions.get(sessionId);
    if (!session || (guard && session.updatedAtMs >= guard.updatedBeforeMs)) return false;
    this.#sessions.delete(sessionId);
    this.#catalog.remove(sessionId);
    this.#subscribers.notify(sessionId, { kind: "deleted" });
    return true;
  }

  async setLabels(
    sessionId: string,
    change: Labels,
    expectedRevision?: number,
  ): Promise<SessionMeta> {
    const session = this.#existing(sessionId);
    if (expectedRevision !== undefined && expectedRevision !== session.labelsRevision) {
      throw labelsRevisionMismatch(sessionId, expectedRevision, session.labelsRevision);
    }
    const labels = applyLabelChange(session.labels, change);
    if (!sameLabels(labels, session.labels)) {
      session.labels = labels;
      session.labelsRevision++;
      this.#catalog.set(catalogEntry(sessionId, session));
    }
    return toMeta(sessionId, session);
  }

  async fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    labels: Labels,
  ): Promise<SessionMeta> {
    const source = this.#existing(sessionId);
    checkForkPoint(sessionId, atSeq, source.log);
    if (this.#sessions.has(newSessionId)) throw sessionExists(newSessionId);
    const forkLabels = applyLabelChange(source.labels, labels);
    const fork = this.#create(newSessionId, {
      createdAtMs: Date.now(),
      log: source.log.forkAt(atSeq),
      labels: forkLabels,
      parent: { sessionId, seq: atSeq },
    });
    return toMeta(newSessionId, fork);
  }

  async rewind(sessionId: string, toSeq: number, expectedSeq?: number): Promise<Rewound> {
    const session = this.#existing(sessionId);
    checkRewind(sessionId, toSeq, expectedSeq, session.log);
    const dropped = session.log.rewind(toSeq);
    this.#touch(sessionId, session, Date.now());
    this.#subscribers.notify(sessionId, { kind: "rewound", toSeq });
    return { dropped, meta: toMeta(sessionId, session) };
  }

  async trim(sessionId: string, beforeSeq: number): Promise<Trimmed> {
    const session = this.#existing(sessionId);
    checkTrim(sessionId, beforeSeq, session.log);
    const before = session.log.firstSeq;
    session.log.trim(beforeSeq);
    return { trimmed: session.log.firstSeq - before, meta: toMeta(sessionId, session) };
  }

  async firstSeqSince(sessionId: string, timeMs: number): Promise<number> {
    return this.#existing(sessionId).log.firstSeqSince(timeMs);
  }

  /** Nothing is ever buffered here. */
  async flush(): Promise<FlushReport> {
    return { flushed: 0, failures: [] };
  }

  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void {
    return this.#subscribers.add(sessionId, listener);
  }

  #create(
    sessionId: string,
    fields: Omit<MemorySession, "updatedAtMs" | "labelsRevision">,
  ): MemorySession {
    const session: MemorySession = {
      ...fields,
      updatedAtMs: fields.createdAtMs,
      labelsRevision: Object.keys(fields.labels).length > 0 ? 1 : 0,
    };
    this.#sessions.set(sessionId, session);
    this.#catalog.set(catalogEntry(sessionId, session));
    return session;
  }

  #touch(sessionId: string, session: MemorySession, now: number): void {
    session.updatedAtMs = now;
    this.#catalog.touch(sessionId, now);
  }

  #existing(sessionId: string): MemorySession {
    const session = this.#sessions.get(sessionId);
    if (!session) throw sessionNotFound(sessionId);
    return session;
  }
}

function catalogEntry(sessionId: string, session: MemorySession): CatalogEntry {
  return { sessionId, updatedAtMs: session.updatedAtMs, labels: session.labels };
}

function toMeta(sessionId: string, session: MemorySession): SessionMeta {
  return {
    sessionId,
    createdAtMs: session.createdAtMs,
    agentLoopVersion: AGENT_LOOP_VERSION,
    messageCount: session.log.length,
    durableCount: 0,
    updatedAtMs: session.updatedAtMs,
    labels: session.labels,
    labelsRevision: session.labelsRevision,
    parent: session.parent,
    firstSeq: session.log.firstSeq,
  };
}
