/**
 * One Watch call's wake-up signal. Watchers hold no messages: when woken they read what is new
 * through the same path as Load, so a slow watcher costs memory for one page at most.
 */
export class Watcher {
  /** Set when the session is deleted: the watch ends with NOT_FOUND. */
  deleted = false;
  private woken = false;
  private resume: (() => void) | undefined;

  wake(): void {
    const resume = this.resume;
    this.resume = undefined;
    if (resume) resume();
    else this.woken = true;
  }

  /** Resolves at the next wake-up (at once if one came since the last wait) or abort. */
  async wait(signal?: AbortSignal): Promise<void> {
    if (this.woken || signal?.aborted) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const onAbort = () => this.wake();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.resume = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }
}

/** The watchers of each session id, including ids that do not exist yet. */
export class WatcherRegistry {
  private readonly byId = new Map<string, Set<Watcher>>();

  add(sessionId: string): Watcher {
    const watcher = new Watcher();
    let watchers = this.byId.get(sessionId);
    if (!watchers) {
      watchers = new Set();
      this.byId.set(sessionId, watchers);
    }
    watchers.add(watcher);
    return watcher;
  }

  remove(sessionId: string, watcher: Watcher): void {
    const watchers = this.byId.get(sessionId);
    watchers?.delete(watcher);
    if (watchers?.size === 0) this.byId.delete(sessionId);
  }

  /** Wakes the session's watchers: it has new messages. */
  notify(sessionId: string): void {
    const watchers = this.byId.get(sessionId);
    if (watchers) for (const watcher of watchers) watcher.wake();
  }

  /** Ends the session's watchers: it is being deleted. */
  endDeleted(sessionId: string): void {
    const watchers = this.byId.get(sessionId);
    if (!watchers) return;
    for (const watcher of watchers) {
      watcher.deleted = true;
      watcher.wake();
    }
  }
}
