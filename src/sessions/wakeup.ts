/**
 * A wake-up signal for one waiting loop (a Watch call): `wake` before `wait` is not lost, and
 * many wakes before a wait count as one. The waiter holds no data: when woken it reads what is
 * new through the same path as Load, so a slow watcher costs memory for one page at most.
 */
export class Wakeup {
  #woken = false;
  #resume: (() => void) | undefined;

  wake(): void {
    const resume = this.#resume;
    this.#resume = undefined;
    if (resume) resume();
    else this.#woken = true;
  }

  /** Resolves at the next wake-up (at once if one came since the last wait) or abort. */
  async wait(signal?: AbortSignal): Promise<void> {
    if (this.#woken || signal?.aborted) {
      this.#woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const onAbort = () => this.wake();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#resume = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }
}
