import type { SessionChange } from "./storage.js";

type Listener = (change: SessionChange) => void;

/**
 * The in-process listeners of each session id, including ids that do not exist yet: what a
 * backend uses to implement `subscribe` when every change happens in this process.
 */
export class Subscribers {
  readonly #byId = new Map<string, Set<Listener>>();

  add(sessionId: string, listener: Listener): () => void {
    let listeners = this.#byId.get(sessionId);
    if (!listeners) {
      listeners = new Set();
      this.#byId.set(sessionId, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#byId.get(sessionId) === listeners) {
        this.#byId.delete(sessionId);
      }
    };
  }

  /** Whether anyone listens to the session. */
  has(sessionId: string): boolean {
    return this.#byId.has(sessionId);
  }

  /** Tells every listener of every session (what changed is not known: they read to find out). */
  notifyAll(change: SessionChange): void {
    for (const sessionId of [...this.#byId.keys()]) this.notify(sessionId, change);
  }

  notify(sessionId: string, change: SessionChange): void {
    const listeners = this.#byId.get(sessionId);
    if (listeners) for (const listener of [...listeners]) listener(change);
  }
}
