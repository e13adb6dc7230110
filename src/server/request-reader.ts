import type { Readable } from "node:stream";

/**
 * Reads a client stream's requests one at a time. It listens to 'data' events rather than
 * async-iterating the call (grpc-js calls do not always end that iteration on half-close), and
 * pauses the stream while `highWater` requests wait, so HTTP/2 flow control slows the client
 * instead of memory growing.
 */
export class RequestReader<T> {
  private queue: T[] = [];
  private head = 0;
  private ended = false;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly stream: Readable,
    private readonly highWater = 64,
  ) {
    stream.on("data", (request: T) => {
      this.queue.push(request);
      if (this.queue.length - this.head >= this.highWater) stream.pause();
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    stream.on("end", end);
    stream.on("error", end);
    stream.on("cancelled", end);
    stream.on("close", end);
  }

  /** Whether `stop` ended the reading (rather than the client). */
  get wasStopped(): boolean {
    return this.stopped;
  }

  /** The next request; undefined once the client half-closed or cancelled, or after `stop`. */
  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.stopped) return undefined;
      if (this.head < this.queue.length) return this.take();
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Stops reading: `next` answers undefined from now on; what the client sends is left unread. */
  stop(): void {
    this.stopped = true;
    this.stream.pause();
    this.notify();
  }

  private take(): T {
    const request = this.queue[this.head] as T;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    if (
      this.stream.isPaused() &&
      !this.stopped &&
      this.queue.length - this.head < this.highWater / 2
    ) {
      this.stream.resume();
    }
    return request;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
