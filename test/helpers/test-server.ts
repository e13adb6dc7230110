import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClientReadableStream, credentials, type ServiceError } from "@grpc/grpc-js";
import { type Logger, pino } from "pino";
import {
  type AppendRequest,
  type AppendResponse,
  type DeleteRequest,
  type DeleteResponse,
  type FlushRequest,
  type FlushResponse,
  ForkRequest,
  type ForkResponse,
  ListRequest,
  type ListResponse,
  type LoadMetaRequest,
  type LoadMetaResponse,
  LoadRequest,
  RewindRequest,
  type RewindResponse,
  SessionStoreClient,
  SetLabelsRequest,
  type SetLabelsResponse,
  TrimRequest,
  type TrimResponse,
} from "../../gen/sessionstore/v1/session_store.js";
import { type Config, loadConfig } from "../../src/config.js";
import { type RunningService, type ServiceOptions, startService } from "../../src/service.js";
import { testDatabases } from "./postgres.js";

/** A real server on 127.0.0.1:0 over a fresh temp data directory, and a generated client for it. */
export interface TestServer {
  server: RunningService;
  client: SessionStoreClient;
  dataDir: string;
  config: Config;
  /** Shuts the server down (flushing everything) and closes the client; keeps the data. */
  stop(): Promise<void>;
  /** stop(), then removes the data directory. */
  close(): Promise<void>;
}

export async function makeTempDir(prefix = "sessionstore-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** How a test server runs beside its settings: a tracer, and a logger of the test's own. */
export interface TestServerOptions extends ServiceOptions {
  /** Where the server logs (by default nowhere, at the configured level). */
  log?: Logger;
}

/**
 * Starts the service on 127.0.0.1:0 with test defaults and `overrides`. A jsonl server gets a
 * fresh temp data directory unless `dataDir` says which; a postgres one a fresh database in the
 * run's cluster unless `databaseUrl` says which (pass a stopped server's to restart on its data).
 */
export async function startTestServer(
  overrides: Partial<Config> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? (await makeTempDir());
  const databaseUrl =
    overrides.storage === "postgres" && !overrides.databaseUrl
      ? await testDatabases().create()
      : (overrides.databaseUrl ?? "");
  const config: Config = {
    ...loadConfig([], {}),
    listen: "127.0.0.1:0",
    dataDir,
    logLevel: "silent",
    maxOpenFiles: 64,
    shutdownTimeoutMs: 5000,
    ...overrides,
    databaseUrl,
  };
  const { log = pino({ level: config.logLevel }), ...serviceOptions } = options;
  const server = await startService(config, log, serviceOptions);
  const client = new SessionStoreClient(server.address, credentials.createInsecure());
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client.close();
    await server.shutdown();
  };
  return {
    server,
    client,
    dataDir,
    config,
    stop,
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
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

/** Everything a server stream sends, or its error. */
export function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.on("data", (item: T) => items.push(item));
    stream.on("error", reject);
    stream.on("end", () => resolve(items));
  });
}

/** The outcome of one Append stream: the acks received and the error it ended with, if any. */
export interface AppendOutcome {
  acks: AppendResponse[];
  error?: ServiceError;
}

/** Sends `requests` on one Append stream, half-closes it and waits for it to end. */
export function appendStream(
  client: SessionStoreClient,
  requests: Partial<AppendRequest>[],
): Promise<AppendOutcome> {
  return new Promise((resolve) => {
    const stream = client.append();
    const acks: AppendResponse[] = [];
    stream.on("data", (ack: AppendResponse) => acks.push(ack));
    stream.on("error", (error: ServiceError) => resolve({ acks, error }));
    stream.on("end", () => resolve({ acks }));
    for (const request of requests) {
      stream.write({ sessionId: "", messages: [], sync: false, labels: {}, ...request });
    }
    stream.end();
  });
}

/** Appends and expects success: resolves to the acks. */
export async function append(
  client: SessionStoreClient,
  requests: Partial<AppendRequest>[],
): Promise<AppendResponse[]> {
  const { acks, error } = await appendStream(client, requests);
  if (error) throw error;
  return acks;
}

/** All messages of a session via Load, in order, checking that pages join without gaps. */
export async function loadAll(
  client: SessionStoreClient,
  sessionId: string,
  options: Partial<Omit<LoadRequest, "sessionId">> = {},
): Promise<{ firstSeq: number; messages: string[] }> {
  const pages = await collect(client.load(LoadRequest.fromPartial({ ...options, sessionId })));
  const messages: string[] = [];
  const firstSeq = pages[0]?.firstSeq ?? options.fromSeq ?? 0;
  for (const page of pages) {
    if (page.firstSeq !== firstSeq + messages.length) {
      throw new Error(
        `page at seq ${page.firstSeq} does not follow seq ${firstSeq + messages.length - 1}`,
      );
    }
    messages.push(...page.messages);
  }
  return { firstSeq, messages };
}

/** The shape motosan's reader gives a session file: skip line 1 if it parses as the header. */
export function readLikeMotosan(text: string): unknown[] {
  const lines = text.split("\n");
  const first = lines[0];
  if (first !== undefined && isMotosanHeader(first)) lines.shift();
  return lines.filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
}

function isMotosanHeader(line: string): boolean {
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    return (
      typeof value.session_id === "string" &&
      typeof value.created_at_ms === "number" &&
      typeof value.agent_loop_version === "string" &&
      typeof value.message_count === "number"
    );
  } catch {
    return false;
  }
}

/** The generated client's unary RPCs as promises. */
export function unaryRpcs(client: SessionStoreClient) {
  return {
    flush: (request: FlushRequest) =>
      unary<FlushRequest, FlushResponse>((r, cb) => client.flush(r, cb), request),
    loadMeta: (request: LoadMetaRequest) =>
      unary<LoadMetaRequest, LoadMetaResponse>((r, cb) => client.loadMeta(r, cb), request),
    list: (request: Partial<ListRequest>) =>
      unary<ListRequest, ListResponse>(
        (r, cb) => client.list(r, cb),
        ListRequest.fromPartial(request),
      ),
    delete: (request: DeleteRequest) =>
      unary<DeleteRequest, DeleteResponse>((r, cb) => client.delete(r, cb), request),
    setLabels: (request: Partial<SetLabelsRequest>) =>
      unary<SetLabelsRequest, SetLabelsResponse>(
        (r, cb) => client.setLabels(r, cb),
        SetLabelsRequest.fromPartial(request),
      ),
    fork: (request: Partial<ForkRequest>) =>
      unary<ForkRequest, ForkResponse>(
        (r, cb) => client.fork(r, cb),
        ForkRequest.fromPartial(request),
      ),
    rewind: (request: Partial<RewindRequest>) =>
      unary<RewindRequest, RewindResponse>(
        (r, cb) => client.rewind(r, cb),
        RewindRequest.fromPartial(request),
      ),
    trim: (request: Partial<TrimRequest>) =>
      unary<TrimRequest, TrimResponse>(
        (r, cb) => client.trim(r, cb),
        TrimRequest.fromPartial(request),
      ),
  };
}
