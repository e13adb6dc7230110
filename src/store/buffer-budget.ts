/**
 * The memory that buffered (acknowledged, not yet written) messages may take, per session and in
 * all. Sizes are JSON text lengths: one byte per character for the ASCII text most messages are.
 * Appends that do not fit wait for writes to free room; while they wait, their stream is not read,
 * so HTTP/2 flow control slows the client instead of memory growing.
 */
export class BufferBudget {
  private used = 0;
  private waiting: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(
    readonly perSession: number,
    readonly total: number,
  ) {}

  /** Bytes buffered now, in all sessions. */
  get usedBytes(): number {
    return this.used;
  }

  /** Whether `bytes` more fit next to a session's `sessionBytes`. */
  hasRoom(sessionBytes: number, bytes: number): boolean {
    return sessionBytes + bytes <= this.perSession && this.used + bytes <= this.total;
  }

  /** Whether the budget of all sessions (not just one's) is what is short. */
  isTotalFull(bytes: number): boolean {
    return this.used + bytes > this.total;
  }

  add(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
    this.wakeAll();
  }

  /** Resolves at the next release (or `wakeAll`): waiters then check again. */
  changed(): Promise<void> {
    if (!this.waiting) {
      let resolve = () => {};
      const promise = new Promise<void>((settle) => {
        resolve = settle;
      });
      this.waiting = { promise, resolve };
    }
    return this.waiting.promise;
  }

  wakeAll(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve();
  }
}

/** The size a request's messages count for in the budget. */
export function bufferedSize(messages: readonly Buffer[]): number {
  let size = 0;
  for (const message of messages) size += message.length;
  return size;
}
