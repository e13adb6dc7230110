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
 * The error a stopped streaming call ends with: the reason it was stopped for (the server shutting
 * down, or the call's connection closing).
 */
export function stopReason(stopped: AbortSignal): SessionStoreError {
  return stopped.reason instanceof SessionStoreError ? stopped.reason : shuttingDown();
}

/**
 * The kinds of streaming call, each with its own limit so that one kind cannot take the room of
 * the other: a reader holding idle Watch streams must not make appends fail.
 */
export type StreamKind = "append" | "read";

/** The concurrent streams allowed of each kind. */
export type StreamLimits = Readonly<Record<StreamKind, number>>;

/** How a full limit is reported: what is counted, and the setting that raises it. */
const LIMIT_NAMES: Readonly<Record<StreamKind, { streams: string; flag: string }>> = {
  append: { streams: "Append streams", flag: "--max-append-streams" },
  read: { streams: "read streams (Load, Watch)", flag: "--max-read-streams" },
};

/** Where a call learns that its connection is closing: an AbortSignal, if the call has one. */
export type ConnectionClosing = (call: { getPeer(): string }) => AbortSignal | undefined;

/**
 * The streaming calls in progress. Shutdown asks each to stop (it ends with UNAVAILABLE after
 * answering what it already took) and waits for them; so does the closing of a call's connection.
 */
export class StreamingCalls {
  private readonly running = new Set<{ stop: AbortController; done: Promise<void> }>();
  private readonly open: Record<StreamKind, number> = { append: 0, read: 0 };
  private stopping = false;

  constructor(
    private readonly limits: StreamLimits,
    private readonly connectionClosing: ConnectionClosing,
    private readonly log: Logger,
  ) {}

  /**
   * Runs a streaming call's handler; `stopped` aborts, with the error to end with as its reason,
   * when the server or the call's connection asks the call to end. Past the limit of concurrent
   * streams of its kind the call ends at once with RESOURCE_EXHAUSTED.
   */
  run(
    call: ResponseStream<unknown>,
    kind: StreamKind,
    handler: (stopped: AbortSignal) => Promise<void>,
  ): void {
    const limit = this.limits[kind];
    if (this.open[kind] >= limit) {
      const { streams, flag } = LIMIT_NAMES[kind];
      const error = new SessionStoreError(
        Code.ResourceExhausted,
        `the server has ${limit} ${streams} open, its limit (${flag}); ` +
          "close idle streams or retry later",
      );
      call.emit("error", toServiceError(error, this.log));
      return;
    }
    const stop = new AbortController();
    if (this.stopping) stop.abort(shuttingDown());
    const closing = this.connectionClosing(call);
    const onClosing = () => stop.abort(closing?.reason);
    if (closing?.aborted) onClosing();
    else closing?.addEventListener("abort", onClosing, { once: true });
    // A handler that fails before it streams (its caller refused, say) ends the call with it.
    const done = handler(stop.signal).catch((error: unknown) => {
      call.emit("error", toServiceError(error, this.log));
    });
    const running = { stop, done };
    this.running.add(running);
    this.open[kind]++;
    void running.done.finally(() => {
      this.running.delete(running);
      this.open[kind]--;
      closing?.removeEventListener("abort", onClosing);
    });
  }

  /** Asks every call to stop and resolves once all have ended. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const calls = [...this.running];
    for (const call of calls) call.stop.abort(shuttingDown());
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
      if (stopped.aborted) throw stopReason(stopped);
      if (call.cancelled) return;
      await send(call, response);
    }
    if (stopped.aborted) throw stopReason(stopped);
    call.end();
  } catch (error) {
    call.emit("error", toServiceError(error, log));
  }
}
