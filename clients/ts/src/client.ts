import {
  ChannelCredentials,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type CallOptions as GrpcCallOptions,
  credentials as grpcCredentials,
  type Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { Appender, type AppenderOptions } from "./appender.js";
import {
  type CallOptions,
  callMetadata,
  cancelOnAbort,
  deadlineFrom,
  type MetadataSource,
  type TokenSource,
  throwIfAborted,
  withToken,
} from "./call-options.js";
import { abortError, SessionStoreError } from "./errors.js";
import {
  type AppendRequest,
  type AppendResponse,
  type DeleteResponse,
  type FlushResponse,
  type ForkResponse,
  SessionStoreClient as GeneratedClient,
  ListOrder as GeneratedListOrder,
  ListRequest,
  type ListResponse,
  type LoadMetaResponse,
  LoadRequest,
  type LoadResponse,
  type RewindResponse,
  type SessionMeta,
  type SetLabelsResponse,
  type TrimResponse,
} from "./gen/sessionstore/v1/session_store.js";
import {
  encodeMessages,
  type JsonObject,
  type JsonParser,
  type MessageInput,
  pageEntries,
  type StoredMessage,
} from "./messages.js";
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  isRetriable,
  type RetryPolicy,
  sleep,
  withRetries,
} from "./retry.js";

/** Files for a TLS connection: a CA to trust (default: Node's), and a client certificate. */
export interface TlsOptions {
  rootCerts?: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

export interface SessionStoreClientOptions {
  /**
   * "insecure" (plaintext), "tls", TLS files, or grpc-js ChannelCredentials. Default: insecure for
   * a loopback address (localhost, 127.0.0.0/8, ::1, unix sockets), TLS for any other.
   */
  credentials?: "insecure" | "tls" | TlsOptions | ChannelCredentials;
  /** Metadata sent on every call, or a function returning it. */
  metadata?: MetadataSource;
  /**
   * A bearer token sent as `authorization: Bearer <token>` on every call, or a function (sync or
   * async) asked for it before every call and every reconnect of a stream: return a refreshed
   * one before the old expires.
   */
  token?: TokenSource;
  /**
   * Deadline of every call except `watch` and `appender` streams, unless the call sets its own.
   * For `list` it applies to each page. Default: none.
   */
  timeoutMs?: number;
  /** Retries of calls that are safe to repeat, and reconnects of streams. */
  retry?: Partial<RetryPolicy>;
  /**
   * Parses messages read back (unless a call asks for `raw`). Default `JSON.parse`, which rounds
   * integers past 2^53; pass a lossless parser, or read `raw`, to keep them.
   */
  parse?: JsonParser;
  /**
   * grpc-js client options: channel options such as `{ "grpc.keepalive_time_ms": 30_000 }`, and
   * `interceptors`.
   */
  grpcOptions?: Partial<ClientOptions>;
}

export interface AppendOptions extends CallOptions {
  /**
   * The seq the first message must get; otherwise the call fails with ABORTED and the error's
   * `actualLength`. With it, the call is retried when the server is UNAVAILABLE (a resend of
   * stored messages is acknowledged, not stored twice); without it, it is not.
   */
  expectedSeq?: number;
  /** Resolve only once the messages are fsynced. Default false (the server's setting applies). */
  sync?: boolean;
  /**
   * Labels for the session if this append creates it; an existing session keeps its own
   * (`setLabels` changes them).
   */
  labels?: Labels;
}

/**
 * A session's labels: keys as Kubernetes label keys (`user`, `example.com/team`), values 1-63
 * characters of `[A-Za-z0-9._-]`. At most 64 of them.
 */
export type Labels = Record<string, string>;

export interface FlushAllResult {
  /** Messages this call wrote. */
  flushed: number;
  /** Sessions whose messages could not be written, and why; every other session is flushed. */
  failures: { sessionId: string; error: SessionStoreError }[];
}

export interface AppendResult {
  /** The seqs the messages got, in order. */
  seqs: number[];
  /** Seq of the first message. */
  firstSeq: number;
  /** The session's length after this append. */
  nextSeq: number;
  /** Messages [0, durableCount) of the session are fsynced. */
  durableCount: number;
}

export interface ReadOptions extends CallOptions {
  /** Messages come out as their stored JSON text, not parsed. */
  raw?: boolean;
}

export interface LoadOptions extends ReadOptions {
  /** First seq returned. Default 0. */
  fromSeq?: number;
  /** At most this many messages. Default: all. */
  limit?: number;
  /** With `limit`: the last `limit` messages (from `fromSeq` on), still in order. */
  last?: boolean;
}

export interface WindowOptions extends ReadOptions {
  /** The window is taken from the messages from this seq on. Default 0. */
  fromSeq?: number;
  /** At most this many messages. Default: no bound. */
  limit?: number;
  /** The newest messages whose sizes (UTF-8 bytes, as stored) add up to at most this. */
  maxBytes?: number;
  /**
   * Start the window at a turn boundary (a message a person wrote), never with a tool result
   * whose call is outside it, so that a model API accepts it; empty when no such start fits.
   */
  wholeTurns?: boolean;
}

/** A context window: the newest messages of a session that fit, and the calls left unanswered. */
export interface ContextWindow<T> {
  /** The window's messages, oldest first, with their seqs. */
  messages: StoredMessage<T>[];
  /**
   * With `wholeTurns`: ids of the tool calls in the window that have no result after them (an
   * interrupted turn), oldest first; answer or drop them before sending the window to a model.
   * Gemini calls without an id are named `name:<function name>`.
   */
  danglingCallIds: string[];
}

export interface WatchOptions extends ReadOptions {
  /** First seq streamed. Default 0: the whole session, then every new message. */
  fromSeq?: number;
}

/**
 * What `watchEvents` yields: a message, or the news that the session was rewound to `toSeq`
 * (the messages yielded from `toSeq` on are gone; the next message yielded has seq `toSeq`).
 */
export type WatchEvent<T> =
  | ({ kind: "message" } & StoredMessage<T>)
  | { kind: "rewound"; toSeq: number };

/** The order of a listing: by session id, or most recently appended first. */
export type ListOrder = "byId" | "byUpdatedDesc";

export interface ListOptions extends CallOptions {
  /** Only sessions whose id starts with this. */
  prefix?: string;
  /**
   * Only sessions whose labels match, in Kubernetes syntax: `user=alice,env!=prod,team,!draft,
   * tier in (a,b),tier notin (c)`; every requirement must hold.
   */
  labelSelector?: string;
  /** Default "byId". "byUpdatedDesc": most recently appended first (then by id). */
  order?: ListOrder;
  /** Sessions fetched per request (the server's default is 100, its maximum 1000). */
  pageSize?: number;
}

export interface SetLabelsOptions extends CallOptions {
  /**
   * Change them only if the session's `labelsRevision` is this; otherwise the call fails with
   * ABORTED and `error.actualLabelsRevision`. Without it, the call is retried on UNAVAILABLE.
   */
  expectedLabelsRevision?: number;
}

export interface ForkOptions extends CallOptions {
  /** Labels for the fork, over the source's (an empty value removes one). */
  labels?: Labels;
}

export interface RewindOptions extends ReadOptions {
  /**
   * Rewind only if the session's length is this (else ABORTED with `error.actualLength`), so
   * that no message you have not seen is dropped.
   */
  expectedSeq?: number;
}

/** What `rewind` dropped, and the session's meta after it. */
export interface RewindResult<T> {
  /** The dropped messages, oldest first, with the seqs they had. */
  dropped: StoredMessage<T>[];
  meta: SessionMeta;
}

/** What `trim` dropped, and the session's meta after it. */
export interface TrimResult {
  /** How many messages this call dropped. */
  trimmed: number;
  /** `meta.firstSeq` is the first seq kept. */
  meta: SessionMeta;
}

const LIST_ORDERS: Record<ListOrder, GeneratedListOrder> = {
  byId: GeneratedListOrder.LIST_ORDER_BY_ID,
  byUpdatedDesc: GeneratedListOrder.LIST_ORDER_BY_UPDATED_DESC,
};

export type { SessionMeta };

type UnaryCallback<Response> = (error: ServiceError | null, response: Response) => void;
type UnaryStart<Response> = (
  metadata: Metadata,
  options: GrpcCallOptions,
  callback: UnaryCallback<Response>,
) => ClientUnaryCall;
type StreamStart<Page> = (
  metadata: Metadata,
  options: GrpcCallOptions,
) => ClientReadableStream<Page>;

/** A page of a Load or Watch stream. */
interface Page {
  firstSeq: number;
  messages: string[];
  rewoundTo?: number | undefined;
}

/**
 * A client of a sessionstore server. One instance holds one channel (connection); share it.
 * Every call takes `timeoutMs`, `signal` and `metadata`, and fails only with SessionStoreError.
 */
export class SessionStoreClient {
  readonly #stub: GeneratedClient;
  readonly #metadata: MetadataSource | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #retry: RetryPolicy;
  readonly #parse: JsonParser;

  /** `address` is host:port, or any grpc-js target (`dns:///…`, `unix:…`). */
  constructor(address: string, options: SessionStoreClientOptions = {}) {
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#stub = new GeneratedClient(address, channelCredentials(address, options.credentials), {
      // grpc-js waits up to 2 minutes between connection attempts by default, failing calls fast
      // meanwhile: reconnect on the retry policy's schedule instead.
      "grpc.initial_reconnect_backoff_ms": this.#retry.initialDelayMs,
      "grpc.max_reconnect_backoff_ms": this.#retry.maxDelayMs,
      ...options.grpcOptions,
    });
    this.#metadata = withToken(options.metadata, options.token);
    this.#timeoutMs = options.timeoutMs;
    this.#parse = options.parse ?? JSON.parse;
  }

  /**
   * Appends messages (objects or JSON text) to a session in one request, atomically: all are
   * stored, in order, or none.
   */
  async append(
    sessionId: string,
    messages: MessageInput | readonly MessageInput[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const request: AppendRequest = {
      sessionId,
      messages: encodeMessages(Array.isArray(messages) ? messages : [messages as MessageInput]),
      expectedSeq: options.expectedSeq,
      sync: options.sync ?? false,
      labels: options.labels ?? {},
    };
    const deadline = deadlineFrom(options.timeoutMs ?? this.#timeoutMs);
    const ack = await withRetries(
      this.#retryPolicy(options.expectedSeq !== undefined),
      { deadline, signal: options.signal },
      () => this.#appendOnce(request, options, deadline),
    );
    return {
      seqs: request.messages.map((_, offset) => ack.firstSeq + offset),
      firstSeq: ack.firstSeq,
      nextSeq: ack.nextSeq,
      durableCount: ack.durableCount,
    };
  }

  /**
   * A long-lived stream that appends to one session: `write()` each message, `await ready()` to
   * respect backpressure, `close()` when done. It batches, acknowledges each message, and
   * survives dropped connections and server restarts without losing or duplicating a message.
   */
  appender(sessionId: string, options: AppenderOptions = {}): Appender {
    const { signal, metadata } = options;
    return new Appender(
      {
        sessionId,
        retry: this.#retry,
        openStream: async () =>
          this.#stub.append(await callMetadata(this.#metadata, metadata, sessionId), {}),
        // Not retried here: the appender retries connecting, with backoff.
        sessionLength: async () =>
          (await this.#meta(sessionId, { signal, metadata }, false))?.messageCount ?? 0,
      },
      options,
    );
  }

  /**
   * A session's messages in order, as `{ seq, message }`. Paged and resumed inside: if the server
   * becomes UNAVAILABLE midway, reading goes on from the next seq. An unknown session yields
   * nothing.
   */
  load(
    sessionId: string,
    options: LoadOptions & { raw: true },
  ): AsyncGenerator<StoredMessage<string>>;
  load<T = JsonObject>(
    sessionId: string,
    options?: LoadOptions & { raw?: false },
  ): AsyncGenerator<StoredMessage<T>>;
  load(sessionId: string, options?: LoadOptions): AsyncGenerator<StoredMessage<unknown>>;
  async *load(
    sessionId: string,
    options: LoadOptions = {},
  ): AsyncGenerator<StoredMessage<unknown>> {
    let fromSeq = options.fromSeq ?? 0;
    let limit = options.limit ?? 0;
    let last = options.last ?? false;
    const parse = this.#parserFor(options);
    const pages = this.#resumable(
      sessionId,
      options,
      deadlineFrom(options.timeoutMs ?? this.#timeoutMs),
      {
        open: (metadata, callOptions) =>
          this.#stub.load(
            LoadRequest.fromPartial({ sessionId, fromSeq, limit, last }),
            metadata,
            callOptions,
          ),
        onPage: (nextSeq, count) => {
          fromSeq = nextSeq;
          last = false;
          if (limit === 0) return true;
          limit -= count;
          return limit > 0;
        },
      },
    );
    for await (const page of pages) yield* pageEntries(page.firstSeq, page.messages, parse);
  }

  /**
   * A context window of a session: its newest messages within `limit` and `maxBytes`, starting
   * at a turn boundary with `wholeTurns`, and the tool calls in it left without a result.
   *
   * The window is read whole: if the server becomes UNAVAILABLE midway, it is read again from
   * the start (not resumed from the next seq, which would choose a different window), so the
   * result is always one window as the server chose it.
   */
  loadWindow(
    sessionId: string,
    options: WindowOptions & { raw: true },
  ): Promise<ContextWindow<string>>;
  loadWindow<T = JsonObject>(
    sessionId: string,
    options?: WindowOptions & { raw?: false },
  ): Promise<ContextWindow<T>>;
  loadWindow(sessionId: string, options?: WindowOptions): Promise<ContextWindow<unknown>>;
  loadWindow(sessionId: string, options: WindowOptions = {}): Promise<ContextWindow<unknown>> {
    const request = LoadRequest.fromPartial({
      sessionId,
      fromSeq: options.fromSeq ?? 0,
      limit: options.limit ?? 0,
      maxBytes: options.maxBytes ?? 0,
      wholeTurns: options.wholeTurns ?? false,
    });
    const parse = this.#parserFor(options);
    const deadline = deadlineFrom(options.timeoutMs ?? this.#timeoutMs);
    return withRetries(this.#retry, { deadline, signal: options.signal }, async () => {
      const window: ContextWindow<unknown> = { messages: [], danglingCallIds: [] };
      const open: StreamStart<LoadResponse> = (metadata, callOptions) =>
        this.#stub.load(request, metadata, callOptions);
      for await (const page of this.#pages(sessionId, options, deadline, open)) {
        window.messages.push(...pageEntries(page.firstSeq, page.messages, parse));
        window.danglingCallIds.push(...page.danglingCallIds);
      }
      return window;
    });
  }

  /**
   * A session's messages from `fromSeq`, then each new one as it is appended, as `{ seq, message }`;
   * runs until the signal aborts, the loop breaks, or the session is deleted (NOT_FOUND). If the
   * server becomes UNAVAILABLE (restart, dropped connection), it reconnects and goes on from the
   * next seq: no message is skipped or repeated.
   */
  watch(
    sessionId: string,
    options: WatchOptions & { raw: true },
  ): AsyncGenerator<StoredMessage<string>>;
  watch<T = JsonObject>(
    sessionId: string,
    options?: WatchOptions & { raw?: false },
  ): AsyncGenerator<StoredMessage<T>>;
  watch(sessionId: string, options?: WatchOptions): AsyncGenerator<StoredMessage<unknown>>;
  async *watch(
    sessionId: string,
    options: WatchOptions = {},
  ): AsyncGenerator<StoredMessage<unknown>> {
    const parse = this.#parserFor(options);
    for await (const page of this.#watchPages(sessionId, options)) {
      yield* pageEntries(page.firstSeq, page.messages, parse);
    }
  }

  /**
   * As `watch`, and tells of rewinds: yields `{ kind: "message", seq, message }` for each
   * message and `{ kind: "rewound", toSeq }` when the session is rewound below what was yielded.
   * The messages yielded from `toSeq` on are then gone, and the watch goes on from `toSeq`. (A
   * plain `watch` goes on from `toSeq` too, without saying so: its seqs start again from there.)
   */
  watchEvents(
    sessionId: string,
    options: WatchOptions & { raw: true },
  ): AsyncGenerator<WatchEvent<string>>;
  watchEvents<T = JsonObject>(
    sessionId: string,
    options?: WatchOptions & { raw?: false },
  ): AsyncGenerator<WatchEvent<T>>;
  watchEvents(sessionId: string, options?: WatchOptions): AsyncGenerator<WatchEvent<unknown>>;
  async *watchEvents(
    sessionId: string,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<unknown>> {
    const parse = this.#parserFor(options);
    for await (const page of this.#watchPages(sessionId, options)) {
      if (page.rewoundTo !== undefined) yield { kind: "rewound", toSeq: page.rewoundTo };
      for (const entry of pageEntries(page.firstSeq, page.messages, parse)) {
        yield { kind: "message", ...entry };
      }
    }
  }

  /**
   * Every session (whose id starts with `prefix`, whose labels match `labelSelector`), by id or
   * most recently appended first; pages are fetched as needed.
   */
  async *list(options: ListOptions = {}): AsyncGenerator<SessionMeta> {
    let pageToken = "";
    do {
      const request = ListRequest.fromPartial({
        pageSize: options.pageSize ?? 0,
        pageToken,
        prefix: options.prefix ?? "",
        labelSelector: options.labelSelector ?? "",
        order: LIST_ORDERS[options.order ?? "byId"],
      });
      const page = await this.#unary<ListResponse>(undefined, options, true, (...args) =>
        this.#stub.list(request, ...args),
      );
      yield* page.sessions;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** A session's metadata, or undefined if it does not exist. */
  meta(sessionId: string, options: CallOptions = {}): Promise<SessionMeta | undefined> {
    return this.#meta(sessionId, options, true);
  }

  /**
   * Sets labels of a session (an empty value removes one) and resolves to its new meta. NOT_FOUND
   * for an unknown session. With `expectedLabelsRevision`, only if the labels are at that
   * revision (else ABORTED with `error.actualLabelsRevision`): read, change, write without
   * losing a concurrent change. Retried on UNAVAILABLE only without it (a retry of a change that
   * was made would then fail).
   */
  async setLabels(
    sessionId: string,
    labels: Labels,
    options: SetLabelsOptions = {},
  ): Promise<SessionMeta> {
    const { expectedLabelsRevision } = options;
    const request = { sessionId, labels, expectedLabelsRevision };
    const response = await this.#unary<SetLabelsResponse>(
      sessionId,
      options,
      expectedLabelsRevision === undefined,
      (...args) => this.#stub.setLabels(request, ...args),
    );
    return metaOf(response);
  }

  /**
   * Creates `newSessionId` holding the first `atSeq` messages of `sessionId` (nothing is copied);
   * appends to either never affect the other. Resolves to the fork's meta (`parentSessionId`,
   * `parentSeq`). ALREADY_EXISTS if `newSessionId` exists; OUT_OF_RANGE if `atSeq` is past the
   * source's length (`error.actualLength`) or below its first kept seq (`error.firstSeq`). Not
   * retried: a retry of a fork that happened would fail with ALREADY_EXISTS.
   */
  async fork(
    sessionId: string,
    atSeq: number,
    newSessionId: string,
    options: ForkOptions = {},
  ): Promise<SessionMeta> {
    const request = { sessionId, atSeq, newSessionId, labels: options.labels ?? {} };
    const response = await this.#unary<ForkResponse>(sessionId, options, false, (...args) =>
      this.#stub.fork(request, ...args),
    );
    return metaOf(response);
  }

  /**
   * Drops the messages from `toSeq` on (the session's length becomes `toSeq`) and resolves to
   * them, parsed as `load` parses them, and to the new meta. Watchers are told. With
   * `expectedSeq`, only if the session's length is that (else ABORTED with `actualLength`).
   * Not retried: a retry of a rewind that happened would drop nothing and say so.
   */
  rewind(
    sessionId: string,
    toSeq: number,
    options: RewindOptions & { raw: true },
  ): Promise<RewindResult<string>>;
  rewind<T = JsonObject>(
    sessionId: string,
    toSeq: number,
    options?: RewindOptions & { raw?: false },
  ): Promise<RewindResult<T>>;
  rewind(sessionId: string, toSeq: number, options?: RewindOptions): Promise<RewindResult<unknown>>;
  async rewind(
    sessionId: string,
    toSeq: number,
    options: RewindOptions = {},
  ): Promise<RewindResult<unknown>> {
    const request = { sessionId, toSeq, expectedSeq: options.expectedSeq };
    const response = await this.#unary<RewindResponse>(sessionId, options, false, (...args) =>
      this.#stub.rewind(request, ...args),
    );
    const parse = this.#parserFor(options);
    return {
      dropped: [...pageEntries(toSeq, response.droppedMessages, parse)],
      meta: metaOf(response),
    };
  }

  /**
   * Removes a session's last message and resolves to it (undefined for an empty or unknown
   * session): `pop_item` of the OpenAI Agents SDK's sessions. It rewinds with `expectedSeq`, so
   * if another writer appends in between it fails with ABORTED rather than drop their message.
   */
  popLast(
    sessionId: string,
    options: ReadOptions & { raw: true },
  ): Promise<StoredMessage<string> | undefined>;
  popLast<T = JsonObject>(
    sessionId: string,
    options?: ReadOptions & { raw?: false },
  ): Promise<StoredMessage<T> | undefined>;
  popLast(sessionId: string, options?: ReadOptions): Promise<StoredMessage<unknown> | undefined>;
  async popLast(
    sessionId: string,
    options: ReadOptions = {},
  ): Promise<StoredMessage<unknown> | undefined> {
    const meta = await this.meta(sessionId, options);
    if (!meta || meta.messageCount === meta.firstSeq) return undefined;
    const length = meta.messageCount;
    const { dropped } = await this.rewind(sessionId, length - 1, {
      ...options,
      expectedSeq: length,
    });
    return dropped[0];
  }

  /**
   * Drops the messages before `beforeSeq` (at most the session's length); seqs do not change.
   * Resolves to how many this call dropped and the new meta (`firstSeq` is the first kept).
   * Reading below it is then OUT_OF_RANGE with `error.firstSeq`. Not retried: a retry of a trim
   * that happened would report 0.
   */
  async trim(sessionId: string, beforeSeq: number, options: CallOptions = {}): Promise<TrimResult> {
    const response = await this.#unary<TrimResponse>(sessionId, options, false, (...args) =>
      this.#stub.trim({ sessionId, beforeSeq }, ...args),
    );
    return { trimmed: response.trimmed, meta: metaOf(response) };
  }

  /**
   * Deletes a session (its seqs start again at 0); resolves to whether it existed. Not retried:
   * a retry of a delete that happened would report false.
   */
  async delete(sessionId: string, options: CallOptions = {}): Promise<boolean> {
    const response = await this.#unary<DeleteResponse>(sessionId, options, false, (...args) =>
      this.#stub.delete({ sessionId }, ...args),
    );
    return response.existed;
  }

  /**
   * Writes and fsyncs a session's buffered messages; resolves to how many messages this call
   * wrote. Fails as the session does (DATA_LOSS for a damaged one, UNAVAILABLE when storage fails).
   */
  async flush(sessionId: string, options: CallOptions = {}): Promise<number> {
    if (!sessionId) {
      throw new SessionStoreError(
        status.INVALID_ARGUMENT,
        "flush() needs a session id; flushAll() flushes every session",
      );
    }
    const response = await this.#unary<FlushResponse>(sessionId, options, true, (...args) =>
      this.#stub.flush({ sessionId }, ...args),
    );
    return response.flushed;
  }

  /**
   * Writes and fsyncs every session's buffered messages (of the caller's tenant). Sessions that
   * cannot be flushed do not stop the others: they come back in `failures`, each with its error.
   */
  async flushAll(options: CallOptions = {}): Promise<FlushAllResult> {
    const response = await this.#unary<FlushResponse>(undefined, options, true, (...args) =>
      this.#stub.flush({ sessionId: "" }, ...args),
    );
    return {
      flushed: response.flushed,
      failures: response.failures.map(({ sessionId, code, message }) => ({
        sessionId,
        error: new SessionStoreError(code, message),
      })),
    };
  }

  /** Closes the channel. Calls still running go on; new ones fail. */
  close(): void {
    this.#stub.close();
  }

  async #meta(
    sessionId: string,
    options: CallOptions,
    retry: boolean,
  ): Promise<SessionMeta | undefined> {
    try {
      const response = await this.#unary<LoadMetaResponse>(sessionId, options, retry, (...args) =>
        this.#stub.loadMeta({ sessionId }, ...args),
      );
      return response.meta;
    } catch (error) {
      if (error instanceof SessionStoreError && error.code === status.NOT_FOUND) return undefined;
      throw error;
    }
  }

  /** How messages read back come out: parsed by the client's parser, or raw text. */
  #parserFor(options: ReadOptions): JsonParser | undefined {
    return options.raw ? undefined : this.#parse;
  }

  /** The pages of a watch, resumed from the next seq (or the rewound one) after UNAVAILABLE. */
  #watchPages(sessionId: string, options: WatchOptions): AsyncGenerator<Page> {
    let fromSeq = options.fromSeq ?? 0;
    /** Where the pages streamed so far end, once there are some. */
    let streamedTo: number | undefined;
    return this.#resumable(sessionId, options, deadlineFrom(options.timeoutMs), {
      open: (metadata, callOptions) =>
        this.#stub.watch({ sessionId, fromSeq }, metadata, callOptions),
      // A rewound page has no messages and starts at the rewound seq: the watch goes on there.
      onPage: (nextSeq) => {
        fromSeq = nextSeq;
        streamedTo = nextSeq;
        return true;
      },
      // A new stream cannot tell of a rewind made while the watch was disconnected (the server
      // does not know what this one streamed): a session now shorter than what was streamed
      // was rewound (or lost unsynced messages in a crash), so say so and go on from its end.
      beforeReopen: async () => {
        if (streamedTo === undefined) return undefined;
        const { signal, metadata } = options;
        const length = (await this.#meta(sessionId, { signal, metadata }, false))?.messageCount;
        if (length === undefined || length >= streamedTo) return undefined;
        return { firstSeq: length, messages: [], rewoundTo: length };
      },
    });
  }

  /** The client's retry policy, or a single attempt for calls that are not safe to repeat. */
  #retryPolicy(retry: boolean): RetryPolicy {
    return retry ? this.#retry : { ...this.#retry, maxAttempts: 1 };
  }

  /** One Append stream with one request: its acknowledgement, or its error. */
  async #appendOnce(
    request: AppendRequest,
    options: CallOptions,
    deadline: number | undefined,
  ): Promise<AppendResponse> {
    const { signal } = options;
    throwIfAborted(signal);
    const metadata = await callMetadata(this.#metadata, options.metadata, request.sessionId);
    return new Promise((resolve, reject) => {
      const call = this.#stub.append(metadata, deadline === undefined ? {} : { deadline });
      const stopListening = cancelOnAbort(signal, call);
      let ack: AppendResponse | undefined;
      let error: unknown;
      call.on("data", (response: AppendResponse) => {
        ack = response;
      });
      call.on("error", (callError) => {
        error = callError;
      });
      call.on("end", () => {
        stopListening();
        if (signal?.aborted) reject(abortError(signal));
        else if (error !== undefined) reject(SessionStoreError.from(error));
        else if (ack) resolve(ack);
        else reject(new SessionStoreError(status.INTERNAL, "Append ended without acknowledging"));
      });
      call.write(request);
      call.end();
    });
  }

  /** A unary call, retried on UNAVAILABLE when `retry`, within one deadline. */
  #unary<Response>(
    sessionId: string | undefined,
    options: CallOptions,
    retry: boolean,
    start: UnaryStart<Response>,
  ): Promise<Response> {
    const { signal } = options;
    const deadline = deadlineFrom(options.timeoutMs ?? this.#timeoutMs);
    const attempt = async () => {
      throwIfAborted(signal);
      const metadata = await callMetadata(this.#metadata, options.metadata, sessionId);
      return new Promise<Response>((resolve, reject) => {
        let stopListening = () => {};
        const call = start(
          metadata,
          deadline === undefined ? {} : { deadline },
          (error, response) => {
            stopListening();
            if (signal?.aborted) reject(abortError(signal));
            else if (error) reject(SessionStoreError.from(error));
            else resolve(response);
          },
        );
        stopListening = cancelOnAbort(signal, call);
      });
    };
    return withRetries(this.#retryPolicy(retry), { deadline, signal }, attempt);
  }

  /**
   * Reads a server stream of pages, reopening it after UNAVAILABLE. `open` starts the stream from
   * the current position; `onPage` moves the position past a page (once the reader took it) and
   * says whether more is wanted; `beforeReopen`, before each reopening, may answer a page to yield
   * first.
   */
  async *#resumable(
    sessionId: string,
    options: CallOptions,
    deadline: number | undefined,
    stream: {
      open: StreamStart<Page>;
      onPage(nextSeq: number, count: number): boolean;
      beforeReopen?(): Promise<Page | undefined>;
    },
  ): AsyncGenerator<Page> {
    // Failed attempts in a row: a page read resets the count.
    let failures = 0;
    let reopening = false;
    for (;;) {
      try {
        const first = reopening ? await stream.beforeReopen?.() : undefined;
        reopening = true;
        if (first) {
          yield first;
          stream.onPage(first.firstSeq + first.messages.length, first.messages.length);
        }
        for await (const page of this.#pages(sessionId, options, deadline, stream.open)) {
          failures = 0;
          yield page;
          if (!stream.onPage(page.firstSeq + page.messages.length, page.messages.length)) return;
        }
        return;
      } catch (caught) {
        const error = SessionStoreError.from(caught);
        failures++;
        const delay = backoffDelay(this.#retry, failures);
        const pastDeadline = deadline !== undefined && Date.now() + delay >= deadline;
        if (!isRetriable(error) || failures >= this.#retry.maxAttempts || pastDeadline) throw error;
        await sleep(delay, options.signal);
      }
    }
  }

  /** The pages of one server-streaming call; cancels the call if the reader stops early. */
  async *#pages<Item>(
    sessionId: string,
    options: CallOptions,
    deadline: number | undefined,
    open: StreamStart<Item>,
  ): AsyncGenerator<Item> {
    const { signal } = options;
    throwIfAborted(signal);
    const metadata = await callMetadata(this.#metadata, options.metadata, sessionId);
    const call = open(metadata, deadline === undefined ? {} : { deadline });
    // The iterator reports errors; this keeps a late one (after cancel) from being unhandled.
    call.on("error", () => {});
    const stopListening = cancelOnAbort(signal, call);
    try {
      for await (const page of call) yield page as Item;
    } catch (error) {
      throw signal?.aborted ? abortError(signal) : SessionStoreError.from(error);
    } finally {
      stopListening();
      call.cancel();
    }
  }
}

/** The meta a SetLabels, Fork, Rewind or Trim response carries (the server always sets it). */
function metaOf(response: { meta: SessionMeta | undefined }): SessionMeta {
  if (response.meta) return response.meta;
  throw new SessionStoreError(status.INTERNAL, "the server answered without the session's meta");
}

function channelCredentials(
  address: string,
  credentials: SessionStoreClientOptions["credentials"],
): ChannelCredentials {
  const chosen = credentials ?? (isLoopback(address) ? "insecure" : "tls");
  if (chosen === "insecure") return grpcCredentials.createInsecure();
  if (chosen === "tls") return grpcCredentials.createSsl();
  if (chosen instanceof ChannelCredentials) return chosen;
  return grpcCredentials.createSsl(chosen.rootCerts, chosen.privateKey, chosen.certChain);
}

/** Whether a grpc-js target names this machine: plaintext is then the safe default. */
export function isLoopback(address: string): boolean {
  if (address.startsWith("unix:")) return true;
  const target = address.replace(/^(dns:(\/\/[^/]*\/)?|ipv4:|ipv6:)/, "");
  const host = /^\[([^\]]+)\]/.exec(target)?.[1] ?? target.replace(/:\d+$/, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
