import type { ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../errors.js";
import { toServiceError } from "./status.js";

export function shuttingDown(): SessionStoreError {
  return new SessionStoreError(
    Code.Unavailable,
    "the server is shutting down; reconnect and resend what was not acknowledged",
  );
}

/**
 * The streaming calls in progress. Shutdown asks each to stop (it ends with UNAVAILABLE after
 * answering what it already took) and waits for them.
 */
export class StreamingCalls {
  private readonly running = new Set<{ stop: AbortController; done: Promise<void> }>();
  private stopping = false;

  constructor(
    private readonly maxStreams: number,
    private readonly log: Logger,
  ) {}

  /**
   * Runs a streaming call's handler; `stopped` aborts when the server asks the call to end.
   * Past the limit of concurrent streams the call ends at once with RESOURCE_EXHAUSTED.
   */
  run(call: ResponseStream<unknown>, handler: (stopped: AbortSignal) => Promise<void>): void {
    if (this.running.size >= this.maxStreams) {
      const error = new SessionStoreError(
        Code.ResourceExhausted,
        `the server has ${this.maxStreams} streams open, its limit (--max-streams); ` +
          "close idle streams or retry later",
      );
      call.emit("error", toServiceError(error, this.log));
      return;
    }
    const stop = new AbortController();
    if (this.stopping) stop.abort();
    const running = { stop, done: handler(stop.signal) };
    this.running.add(running);
    void running.done.finally(() => this.running.delete(running));
  }

  /** Asks every call to stop and resolves once all have ended. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const calls = [...this.running];
    for (const call of calls) call.stop.abort();
    await Promise.allSettled(calls.map((call) => call.done));
  }
}

/** A call the server streams responses of type T on. */
type ResponseStream<T> = ServerWritableStream<unknown, T> | ServerDuplexStream<unknown, T>;

/**
 * Writes one response. Returns a promise, to await before writing more, only when the client's
 * flow-control window is full: the common case allocates none.
 */
export function send<T>(call: ResponseStream<T>, response: T): Promise<void> | undefined {
  if (call.write(response) || call.cancelled) return undefined;
  return new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
  });
}

/**
 * Streams `responses` to the client with backpressure, then ends the call: OK when they are all
 * sent, with the error's status when producing them fails, UNAVAILABLE when the server stops it.
 * A cancelled call stops producing (so files it holds are released). A producer that waits for
 * news (Watch) must itself end when the server stops: this only checks between responses.
 */
export async function streamResponses<T>(
  call: ServerWritableStream<unknown, T>,
  responses: AsyncIterable<T>,
  stopped: AbortSignal,
  log: Logger,
): Promise<void> {
  try {
    for await (const response of responses) {
      if (stopped.aborted) throw shuttingDown();
      if (call.cancelled) return;
      await send(call, response);
    }
    if (stopped.aborted) throw shuttingDown();
    call.end();
  } catch (error) {
    call.emit("error", toServiceError(error, log));
  }
}
