import { type ClientDuplexStream, status } from "@grpc/grpc-js";
import type { MetadataInit } from "./call-options.js";
import { abortError, SessionStoreError } from "./errors.js";
import type { AppendRequest, AppendResponse } from "./gen/sessionstore/v1/session_store.js";
import { encodeMessage, type MessageInput } from "./messages.js";
import { backoffDelay, isRetriable, type RetryPolicy } from "./retry.js";

/** Options of `client.appender(sessionId, options)`. */
export interface AppenderOptions {
  /**
   * The seq the first message written must get. Given, the appender is strict: if the session's
   * length is not that (another writer got there first), it fails with ABORTED. Omitted, the
   * appender appends at the session's end, which it reads when it starts, and moves past another
   * writer's messages if one appends meanwhile.
   */
  expectedSeq?: number;
  /** Acknowledge messages only once they are fsynced. Default false. */
  sync?: boolean;
  /**
   * Labels for the session if the appender creates it (they go with a request at seq 0, the only
   * one that can); an existing session keeps its own (`setLabels` changes them).
   */
  labels?: Record<string, string>;
  /** At most this many messages per request. Default 500. */
  maxBatchMessages?: number;
  /** At most about this many bytes of messages per request (one larger message goes alone). Default 1 MiB. */
  maxBatchBytes?: number;
  /** `ready()` waits while this many messages are unacknowledged. Default 1000. */
  maxPendingMessages?: number;
  /** `ready()` waits while this many bytes of messages are unacknowledged. Default 8 MiB. */
  maxPendingBytes?: number;
  /** Aborting fails every unacknowledged message with CANCELLED and ends the stream. */
  signal?: AbortSignal;
  /** Sent when the stream (re)connects, after the client's metadata; `x-session-id` is added. */
  metadata?: MetadataInit;
}

/** What a message's acknowledgement says. */
export interface MessageAck {
  /** The message's seq: its position in the session. */
  seq: number;
  /** The session's length after the request that carried the message. */
  nextSeq: number;
  /** Messages [0, durableCount) of the session are fsynced (so this one is iff seq < durableCount). */
  durableCount: number;
}

/** What an appender needs from the client: streams to the session, and the session's length. */
export interface AppenderTransport {
  sessionId: string;
  retry: RetryPolicy;
  /** Opens an Append stream carrying the session's metadata. */
  openStream(): Promise<ClientDuplexStream<AppendRequest, AppendResponse>>;
  /** The session's current length (0 for a session that does not exist). */
  sessionLength(): Promise<number>;
}

interface Waiter {
  until(): boolean;
  resolve(): void;
  reject(error: SessionStoreError): void;
}

interface PendingMessage {
  text: string;
  bytes: number;
  resolve(ack: MessageAck): void;
  reject(error: SessionStoreError): void;
}

/** One Append stream and what was sent on it. */
interface Connection {
  call: ClientDuplexStream<AppendRequest, AppendResponse>;
  /** Message counts of the requests sent on this stream and not yet acknowledged, in order. */
  requests: number[];
  /** Whether grpc-js asked us to wait for "drain" before writing more. */
  waitingForDrain: boolean;
}

const DEFAULTS = {
  maxBatchMessages: 500,
  maxBatchBytes: 1024 * 1024,
  maxPendingMessages: 1000,
  maxPendingBytes: 8 * 1024 * 1024,
};

/**
 * A long-lived Append stream to one session. Messages written in the same tick go out as one
 * request (up to a size); each write's promise settles with that message's acknowledgement.
 *
 * Every request carries `expected_seq`, so when the connection drops (or the server restarts) the
 * appender reconnects and resends exactly the messages not yet acknowledged, at the seqs they
 * claimed: the server stores those it lacks and acknowledges those it already has. The log ends up
 * without gaps or duplicates, in write order, provided the appender is the session's only writer
 * (see the README for the cases with several).
 */
export class Appender {
  readonly #transport: AppenderTransport;
  readonly #options: Required<
    Omit<AppenderOptions, "expectedSeq" | "signal" | "metadata" | "labels">
  >;
  readonly #strict: boolean;
  readonly #labels: Record<string, string>;
  readonly #signal: AbortSignal | undefined;
  /** Written and not acknowledged, in seq order: sent on the current stream first, then unsent. */
  readonly #unacknowledged: PendingMessage[] = [];
  #pendingBytes = 0;
  /** Seq of #unacknowledged[0]: the session's length as far as acknowledgements tell. */
  #base: number | undefined;
  /** How many of #unacknowledged were sent on the current stream. */
  #sent = 0;
  #connection: Connection | undefined;
  #connecting = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  /** Failed attempts in a row (reset by each acknowledgement). */
  #failedAttempts = 0;
  #sendScheduled = false;
  #closing = false;
  #closed = false;
  #failure: SessionStoreError | undefined;
  /** ready() and close() calls waiting for their condition (or the failure). */
  #waiters: Waiter[] = [];

  constructor(transport: AppenderTransport, options: AppenderOptions = {}) {
    this.#transport = transport;
    this.#options = {
      sync: options.sync ?? false,
      maxBatchMessages: options.maxBatchMessages ?? DEFAULTS.maxBatchMessages,
      maxBatchBytes: options.maxBatchBytes ?? DEFAULTS.maxBatchBytes,
      maxPendingMessages: options.maxPendingMessages ?? DEFAULTS.maxPendingMessages,
      maxPendingBytes: options.maxPendingBytes ?? DEFAULTS.maxPendingBytes,
    };
    this.#strict = options.expectedSeq !== undefined;
    this.#labels = options.labels ?? {};
    this.#base = options.expectedSeq;
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#fail(abortError(this.#signal));
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The session this appender writes to. */
  get sessionId(): string {
    return this.#transport.sessionId;
  }

  /** Messages written and not yet acknowledged. */
  get pending(): number {
    return this.#unacknowledged.length;
  }

  /** The seq the next message written will get, once known (after the appender connected). */
  get nextSeq(): number | undefined {
    return this.#base === undefined ? undefined : this.#base + this.#unacknowledged.length;
  }

  /** The error the appender failed with, if it did. */
  get error(): SessionStoreError | undefined {
    return this.#failure;
  }

  /**
   * Queues a message; the promise settles with its acknowledgement. Throws at once (a
   * SessionStoreError) if the message is not a JSON object or the appender is closed or failed;
   * such a message is not queued and affects no other.
   *
   * The promise rejects only if the appender fails (a status that reconnecting cannot fix, retries
   * exhausted, abort); it is marked handled, so a caller that does not await each message learns of
   * a failure from `ready()` or `close()` instead.
   */
  write(message: MessageInput): Promise<MessageAck> {
    if (this.#failure) throw this.#failure;
    if (this.#closing) {
      throw new SessionStoreError(status.FAILED_PRECONDITION, "the appender is closed");
    }
    const text = encodeMessage(message);
    const bytes = Buffer.byteLength(text);
    const acknowledged = new Promise<MessageAck>((resolve, reject) => {
      this.#unacknowledged.push({ text, bytes, resolve, reject });
    });
    acknowledged.catch(() => {});
    this.#pendingBytes += bytes;
    this.#scheduleSend();
    return acknowledged;
  }

  /** Whether `ready()` would wait: too many messages or bytes are unacknowledged. */
  get full(): boolean {
    return (
      this.#unacknowledged.length >= this.#options.maxPendingMessages ||
      this.#pendingBytes >= this.#options.maxPendingBytes
    );
  }

  /**
   * Resolves once fewer than `maxPendingMessages` messages (and `maxPendingBytes` bytes) are
   * unacknowledged; rejects if the appender fails. Await it between writes to keep memory bounded
   * when the server is slower than the producer.
   */
  ready(): Promise<void> {
    return this.#waitUntil(() => !this.full);
  }

  /**
   * Waits until every message written is acknowledged, then ends the stream. Rejects with the
   * failure if the appender failed. Writing after close throws.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#scheduleSend();
    await this.#waitUntil(() => this.#unacknowledged.length === 0);
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) await endStream(connection.call);
  }

  #onAbort = () => {
    this.#fail(abortError(this.#signal as AbortSignal));
  };

  #scheduleSend(): void {
    if (this.#sendScheduled) return;
    this.#sendScheduled = true;
    setImmediate(() => {
      this.#sendScheduled = false;
      this.#send();
    });
  }

  /** Sends the unsent messages, in requests of at most the batch size, while grpc-js takes them. */
  #send(): void {
    if (this.#failure || this.#closed || this.#sent === this.#unacknowledged.length) return;
    const connection = this.#connection;
    if (!connection) {
      this.#connect();
      return;
    }
    if (connection.waitingForDrain || this.#base === undefined) return;
    while (this.#sent < this.#unacknowledged.length) {
      const batch = this.#nextBatch();
      const expectedSeq = this.#base + this.#sent;
      const request: AppendRequest = {
        sessionId: this.#transport.sessionId,
        messages: batch,
        expectedSeq,
        sync: this.#options.sync,
        labels: expectedSeq === 0 ? this.#labels : {},
      };
      connection.requests.push(batch.length);
      this.#sent += batch.length;
      if (!connection.call.write(request)) {
        connection.waitingForDrain = true;
        connection.call.once("drain", () => {
          connection.waitingForDrain = false;
          this.#send();
        });
        return;
      }
    }
  }

  /** The texts of the next request: unsent messages up to the batch limits, at least one. */
  #nextBatch(): string[] {
    const texts: string[] = [];
    let bytes = 0;
    for (let index = this.#sent; index < this.#unacknowledged.length; index++) {
      const message = this.#unacknowledged[index] as PendingMessage;
      if (
        texts.length > 0 &&
        (texts.length >= this.#options.maxBatchMessages ||
          bytes + message.bytes > this.#options.maxBatchBytes)
      ) {
        break;
      }
      texts.push(message.text);
      bytes += message.bytes;
    }
    return texts;
  }

  /** Opens a stream (learning the session's length first if not known), then sends. */
  #connect(): void {
    if (this.#connecting || this.#reconnectTimer) return;
    this.#connecting = true;
    void (async () => {
      try {
        this.#base ??= await this.#transport.sessionLength();
        const call = await this.#transport.openStream();
        if (this.#failure || this.#closed) {
          call.cancel();
          call.on("error", () => {});
          return;
        }
        this.#attach(call);
      } catch (error) {
        this.#connecting = false;
        this.#onStreamFailed(SessionStoreError.from(error));
        return;
      }
      this.#connecting = false;
      this.#send();
    })();
  }

  /** Takes a new stream into use: acknowledgements settle messages; its end is handled once. */
  #attach(call: ClientDuplexStream<AppendRequest, AppendResponse>): void {
    const connection: Connection = { call, requests: [], waitingForDrain: false };
    this.#connection = connection;
    this.#sent = 0;
    let streamError: unknown;
    call.on("data", (ack: AppendResponse) => {
      if (this.#connection === connection) this.#onAck(connection, ack);
    });
    // grpc-js emits "error" as soon as the status arrives, possibly before acknowledgements still
    // buffered in the stream; "end" comes after them. Acting on "end" keeps acks before the error.
    call.on("error", (error) => {
      streamError = error;
    });
    call.on("end", () => {
      if (this.#connection !== connection) return;
      this.#connection = undefined;
      this.#sent = 0;
      this.#onStreamFailed(
        streamError === undefined
          ? new SessionStoreError(status.UNAVAILABLE, "the server ended the Append stream")
          : SessionStoreError.from(streamError),
      );
    });
  }

  #onAck(connection: Connection, ack: AppendResponse): void {
    const count = connection.requests.shift();
    if (count === undefined || ack.firstSeq !== this.#base || ack.sessionId !== this.sessionId) {
      this.#fail(
        new SessionStoreError(
          status.INTERNAL,
          `unexpected acknowledgement (first_seq ${ack.firstSeq}, expected ${this.#base}) for session ${ack.sessionId}`,
        ),
      );
      return;
    }
    const acknowledged = this.#unacknowledged.splice(0, count);
    const base = this.#base;
    this.#base += count;
    this.#sent -= count;
    this.#failedAttempts = 0;
    for (const [offset, message] of acknowledged.entries()) {
      this.#pendingBytes -= message.bytes;
      message.resolve({ seq: base + offset, nextSeq: ack.nextSeq, durableCount: ack.durableCount });
    }
    this.#settleWaiters();
  }

  /** The stream ended before every message was acknowledged (or failed to open). */
  #onStreamFailed(error: SessionStoreError): void {
    if (this.#failure || this.#closed) return;
    // An idle appender reconnects when it has something to send.
    if (this.#unacknowledged.length === 0 && isRetriable(error)) return;
    const rebase = this.#rebaseAfterConflict(error);
    if (rebase !== undefined) {
      this.#base = rebase;
    } else if (!isRetriable(error)) {
      this.#fail(error);
      return;
    }
    this.#failedAttempts++;
    if (this.#failedAttempts >= this.#transport.retry.maxAttempts) {
      this.#fail(
        new SessionStoreError(
          error.code,
          `${error.details} (gave up after ${this.#failedAttempts} attempts)`,
          { metadata: error.metadata, cause: error },
        ),
      );
      return;
    }
    const delay =
      rebase !== undefined ? 0 : backoffDelay(this.#transport.retry, this.#failedAttempts);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#send();
    }, delay);
  }

  /**
   * For an appender that appends at the session's end: after ABORTED because another writer
   * appended at the seq the first unacknowledged message claimed, the seq to claim instead. That
   * request was not stored (a request is stored whole at the seq it names, and the server
   * acknowledges a resend of a stored one), so it moves past the other writer's messages. A
   * session shorter than what was acknowledged (deleted, or a crash lost unsynced messages) is
   * not papered over: the appender fails.
   */
  #rebaseAfterConflict(error: SessionStoreError): number | undefined {
    if (this.#strict || error.code !== status.ABORTED || this.#base === undefined) return undefined;
    const actual = error.actualLength;
    return actual !== undefined && actual > this.#base ? actual : undefined;
  }

  /** Fails every unacknowledged message and every waiter; the appender takes no more writes. */
  #fail(error: SessionStoreError): void {
    if (this.#failure) return;
    this.#failure = error;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) {
      connection.call.on("error", () => {});
      connection.call.cancel();
    }
    for (const message of this.#unacknowledged.splice(0)) message.reject(error);
    this.#pendingBytes = 0;
    this.#settleWaiters();
  }

  /** Resolves once `until()` holds; rejects with the failure if the appender fails first. */
  #waitUntil(until: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ until, resolve, reject });
      this.#settleWaiters();
    });
  }

  /** Settles the waiters whose condition holds, or all of them once the appender failed. */
  #settleWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (this.#failure) waiter.reject(this.#failure);
      else if (waiter.until()) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }
}

/** Half-closes an Append stream and waits for the server to end it. */
function endStream(call: ClientDuplexStream<AppendRequest, AppendResponse>): Promise<void> {
  return new Promise((resolve) => {
    call.on("error", () => resolve());
    call.on("end", () => resolve());
    call.end();
  });
}
