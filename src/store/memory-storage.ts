import type { ListQuery, SessionStorage, StoredSessionMeta, WriteOptions } from "./storage.js";
import { AGENT_LOOP_VERSION } from "./storage.js";

interface MemorySession {
  createdAtMs: number;
  updatedAtMs: number;
  messages: string[];
}

/** Keeps logs in process memory: for tests and for deployments that need no persistence. */
export class MemoryStorage implements SessionStorage {
  private readonly sessions = new Map<string, MemorySession>();

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  async meta(sessionId: string): Promise<StoredSessionMeta | undefined> {
    const session = this.sessions.get(sessionId);
    return session && toMeta(sessionId, session);
  }

  async write(
    sessionId: string,
    firstSeq: number,
    messages: readonly string[],
    options: WriteOptions,
  ): Promise<void> {
    let session = this.sessions.get(sessionId);
    if (!session) {
      // Like every backend: a session exists once it has a message.
      if (messages.length === 0) return;
      session = {
        createdAtMs: options.createdAtMs,
        updatedAtMs: options.createdAtMs,
        messages: [],
      };
      this.sessions.set(sessionId, session);
    }
    if (firstSeq !== session.messages.length) {
      throw new Error(`write at seq ${firstSeq} but ${sessionId} holds ${session.messages.length}`);
    }
    session.messages.push(...messages);
    if (messages.length > 0) session.updatedAtMs = Date.now();
  }

  async *read(sessionId: string, fromSeq: number, count: number): AsyncIterable<string[]> {
    const messages = this.sessions.get(sessionId)?.messages ?? [];
    if (count > 0) yield messages.slice(fromSeq, fromSeq + count);
  }

  async list(query: ListQuery): Promise<StoredSessionMeta[]> {
    return [...this.sessions.keys()]
      .filter((id) => id.startsWith(query.prefix) && id > query.after)
      .sort()
      .slice(0, query.limit)
      .map((id) => toMeta(id, this.sessions.get(id) as MemorySession));
  }

  async delete(sessionId: string): Promise<boolean> {
    return this.sessions.delete(sessionId);
  }
}

function toMeta(sessionId: string, session: MemorySession): StoredSessionMeta {
  return {
    sessionId,
    createdAtMs: session.createdAtMs,
    agentLoopVersion: AGENT_LOOP_VERSION,
    messageCount: session.messages.length,
    durableCount: session.messages.length,
    updatedAtMs: session.updatedAtMs,
  };
}
