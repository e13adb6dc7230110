import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ClientDuplexStream,
  type ClientReadableStream,
  credentials,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  AppendRequest,
  type AppendResponse,
  type FlushRequest,
  type FlushResponse,
  ListRequest,
  type ListResponse,
  LoadRequest,
  type LoadResponse,
  SessionStoreClient,
} from "../gen/sessionstore/v1/session_store.js";
import { type ServerProcess, spawnServer } from "./child-process.js";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));

export interface SessionStoreOptions {
  dataDir: string;
  /** More `sessionstore serve` flags. */
  args?: readonly string[];
  /** Run under strace, logging every fsync and fdatasync with a timestamp to this file. */
  fsyncTrace?: string;
  /** Write a V8 CPU profile of the server into this directory when it exits. */
  cpuProfileDir?: string;
}

/** The compiled server (`sessionstore serve`) as a child process, and a generated client. */
export interface SessionStoreProcess extends ServerProcess {
  client: SessionStoreClient;
  /** Stops the server (see ServerProcess.stop) and closes the client. */
  close(options?: { kill?: boolean }): Promise<void>;
}

export async function startSessionStore(
  options: SessionStoreOptions,
): Promise<SessionStoreProcess> {
  const node = [process.execPath];
  if (options.cpuProfileDir) {
    mkdirSync(options.cpuProfileDir, { recursive: true });
    node.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`);
  }
  const serve = [
    ...node,
    CLI,
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    options.dataDir,
    "--log-level",
    "info",
    ...(options.args ?? []),
  ];
  const command = options.fsyncTrace
    ? [
        "strace",
        "-f",
        "--seccomp-bpf",
        "-qq",
        "-ttt",
        "-e",
        "trace=fsync,fdatasync",
        "-e",
        "signal=none",
        "-o",
        options.fsyncTrace,
        ...serve,
      ]
    : serve;
  const server = await spawnServer(command, "sessionstore listening", {
    wrapped: options.fsyncTrace !== undefined,
  });
  const client = new SessionStoreClient(server.address, credentials.createInsecure());
  return {
    ...server,
    client,
    async close(closeOptions) {
      client.close();
      await server.stop(closeOptions);
    },
  };
}

/** A fresh directory under `parent`. */
export function freshDir(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  return path;
}

/** Promisifies a unary call of the generated client. */
export function unary<Request, Response>(
  call: (
    request: Request,
    callback: (error: ServiceError | null, response: Response) => void,
  ) => unknown,
  request: Request,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    call(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

export function flush(client: SessionStoreClient, sessionId: string): Promise<number> {
  return unary<FlushRequest, FlushResponse>((r, cb) => client.flush(r, cb), { sessionId }).then(
    (response) => response.flushed,
  );
}

export function listFirstPage(client: SessionStoreClient): Promise<ListResponse> {
  return unary<ListRequest, ListResponse>(
    (r, cb) => client.list(r, cb),
    ListRequest.fromPartial({}),
  );
}

/** Loads a session's messages; resolves to how many arrived (pages are checked to join). */
export function loadCount(
  client: SessionStoreClient,
  request: Partial<LoadRequest>,
): Promise<number> {
  return consume(client.load(LoadRequest.fromPartial(request)));
}

function consume(stream: ClientReadableStream<LoadResponse>): Promise<number> {
  return new Promise((resolve, reject) => {
    let count = 0;
    let nextSeq: number | undefined;
    stream.on("data", (page: LoadResponse) => {
      if (nextSeq !== undefined && page.firstSeq !== nextSeq) {
        stream.cancel();
        reject(new Error(`page at seq ${page.firstSeq} does not follow seq ${nextSeq - 1}`));
      }
      count += page.messages.length;
      nextSeq = page.firstSeq + page.messages.length;
    });
    stream.on("error", reject);
    stream.on("end", () => resolve(count));
  });
}

/**
 * One Append stream used request by request: `append` resolves to the request's ack. Acks come
 * in request order, so they are matched to requests first in, first out.
 */
export class Appender {
  private readonly call: ClientDuplexStream<AppendRequest, AppendResponse>;
  private readonly waiting: {
    resolve: (ack: AppendResponse) => void;
    reject: (error: Error) => void;
  }[] = [];
  private failure: Error | undefined;

  constructor(client: SessionStoreClient) {
    this.call = client.append();
    this.call.on("data", (ack: AppendResponse) => this.waiting.shift()?.resolve(ack));
    this.call.on("error", (error: Error) => this.fail(error));
    this.call.on("end", () => this.fail(new Error("the Append stream ended")));
  }

  append(request: Partial<AppendRequest>): Promise<AppendResponse> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(AppendRequest.fromPartial(request));
    });
  }

  /** Half-closes the stream and waits for the server to end it. */
  end(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.call.on("end", resolve);
      this.call.on("error", reject);
      this.call.end();
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

/**
 * Sends `requests` on one Append stream with up to `window` unacknowledged, then half-closes it:
 * how the scenarios make their datasets through the API.
 */
export async function appendPipelined(
  client: SessionStoreClient,
  requests: Iterable<Partial<AppendRequest>>,
  window = 64,
): Promise<void> {
  const appender = new Appender(client);
  const inFlight: Promise<unknown>[] = [];
  for (const request of requests) {
    inFlight.push(appender.append(request));
    if (inFlight.length >= window) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await appender.end();
}
