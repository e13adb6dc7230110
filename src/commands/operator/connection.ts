import { readFileSync } from "node:fs";
import {
  type CallOptions,
  type ChannelCredentials,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  type AppendResponse,
  ListOrder,
  type LoadRequest,
  type SessionMeta,
  SessionStoreClient,
  type WatchRequest,
  type WatchResponse,
} from "../../../gen/sessionstore/v1/session_store.js";

/** How to reach the server: the global options, as the clients take them. */
export interface ConnectionOptions {
  address: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Plaintext even to a non-loopback address (a sidecar terminates TLS). */
  insecure?: boolean;
  token?: string;
}

/** Whether a grpc-js target names this machine: plaintext is then the default, as in the clients. */
export function isLoopback(address: string): boolean {
  if (address.startsWith("unix:")) return true;
  const target = address.replace(/^(dns:(\/\/[^/]*\/)?|ipv4:|ipv6:)/, "");
  const host = /^\[([^\]]+)\]/.exec(target)?.[1] ?? target.replace(/:\d+$/, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A usage mistake in the global options: exit code 2. */
export class UsageError extends Error {}

function channelCredentials(options: ConnectionOptions): ChannelCredentials {
  const tlsAsked = options.tlsCa ?? options.tlsCert ?? options.tlsKey;
  if (options.insecure && tlsAsked)
    throw new UsageError("--insecure contradicts the --tls-* options");
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together (a client certificate and its key)");
  }
  if (options.insecure || (!tlsAsked && isLoopback(options.address))) {
    return credentials.createInsecure();
  }
  const read = (path: string | undefined) => (path === undefined ? null : readFileSync(path));
  return credentials.createSsl(read(options.tlsCa), read(options.tlsKey), read(options.tlsCert));
}

/**
 * The generated client with the calls the commands make, as promises and async iterables. Every
 * call carries the token (never printed) and `x-session-id` where it is about one session.
 */
export class Connection {
  readonly client: SessionStoreClient;
  readonly #token: string | undefined;

  constructor(readonly options: ConnectionOptions) {
    this.client = new SessionStoreClient(options.address, channelCredentials(options), {
      // Reconnect promptly: `tail -f` waits for the server to come back.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2000,
    });
    this.#token = options.token;
  }

  metadata(sessionId?: string): Metadata {
    const metadata = new Metadata();
    if (this.#token) metadata.set("authorization", `Bearer ${this.#token}`);
    if (sessionId) metadata.set("x-session-id", sessionId);
    return metadata;
  }

  /** A unary call: `method` is bound to the client and called with metadata and a callback. */
  unary<Request, Response>(
    method: (
      request: Request,
      metadata: Metadata,
      options: Partial<CallOptions>,
      callback: (error: ServiceError | null, response: Response) => void,
    ) => unknown,
    request: Request,
    sessionId?: string,
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      method.call(this.client, request, this.metadata(sessionId), {}, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  async meta(sessionId: string): Promise<SessionMeta> {
    const response = await this.unary(this.client.loadMeta, { sessionId }, sessionId);
    return response.meta as SessionMeta;
  }

  /** Every session the listing gives, page after page. */
  async *list(query: {
    prefix?: string;
    labelSelector?: string;
    recent?: boolean;
  }): AsyncGenerator<SessionMeta> {
    for (let pageToken = ""; ; ) {
      const page = await this.unary(this.client.list, {
        pageSize: 500,
        pageToken,
        prefix: query.prefix ?? "",
        labelSelector: query.labelSelector ?? "",
        order: query.recent ? ListOrder.LIST_ORDER_BY_UPDATED_DESC : ListOrder.LIST_ORDER_BY_ID,
      });
      yield* page.sessions;
      if (page.nextPageToken === "") return;
      pageToken = page.nextPageToken;
    }
  }

  /** A session's messages as stored (JSON text) with their seqs. */
  async *load(
    sessionId: string,
    range: Pick<LoadRequest, "fromSeq" | "limit" | "last">,
  ): AsyncGenerator<{ seq: number; text: string }> {
    const stream = this.client.load(
      { sessionId, maxBytes: 0, wholeTurns: false, ...range },
      this.metadata(sessionId),
    );
    for await (const page of streamOf(stream)) {
      for (const [i, text] of page.messages.entries()) yield { seq: page.firstSeq + i, text };
    }
  }

  /**
   * Appends `batches` over one Append stream, the first at seq `from`, each at its expected seq
   * (so a batch the session holds already, byte for byte, is recognised and not stored twice; a
   * different one fails with ABORTED). The last is acknowledged once durable. Resolves to the
   * session's length afterwards.
   */
  async appendAll(
    sessionId: string,
    batches: string[][],
    options: { from: number; labels: Record<string, string> },
  ): Promise<number> {
    const stream = this.client.append(this.metadata(sessionId));
    const responses = (stream as AsyncIterable<AppendResponse>)[Symbol.asyncIterator]();
    let next = options.from;
    try {
      for (const [i, messages] of batches.entries()) {
        const last = i === batches.length - 1;
        stream.write({
          sessionId,
          messages,
          expectedSeq: next,
          sync: last,
          labels: options.labels,
        });
        const answer = await responses.next();
        if (answer.done)
          throw new Error(`the server ended the append stream of ${sessionId} early`);
        next = answer.value.nextSeq;
      }
      stream.end();
      return next;
    } finally {
      stream.cancel();
    }
  }

  watch(request: WatchRequest): ClientReadableStream<WatchResponse> {
    return this.client.watch(request, this.metadata(request.sessionId));
  }

  close(): void {
    this.client.close();
  }
}

/** A server stream as an async iterable that rejects with the stream's error. */
export async function* streamOf<T>(stream: ClientReadableStream<T>): AsyncGenerator<T> {
  try {
    for await (const item of stream as AsyncIterable<T>) yield item;
  } finally {
    stream.cancel();
  }
}

/** Whether `error` is a gRPC status error. */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/** The documented exit codes (README, "Operating it"). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unavailable: 5,
  denied: 6,
} as const;

/** The exit code for a failed call's status. */
export function exitCodeOf(error: ServiceError): number {
  switch (error.code) {
    case status.NOT_FOUND:
      return EXIT.notFound;
    case status.ABORTED:
    case status.ALREADY_EXISTS:
    case status.FAILED_PRECONDITION:
      return EXIT.conflict;
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return EXIT.unavailable;
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return EXIT.denied;
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return EXIT.usage;
    default:
      return EXIT.failure;
  }
}
