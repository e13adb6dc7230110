import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ClientReadableStream, type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, describe, expect } from "vitest";
import {
  type DeleteResponse,
  type FlushResponse,
  type ListRequest,
  type ListResponse,
  LoadRequest,
  type LoadResponse,
  type SessionMeta,
  type SessionStoreClient,
  type WatchResponse,
} from "../../gen/sessionstore/v1/session_store.js";
import type { Config } from "../../src/config.js";
import { testDatabases } from "../helpers/postgres.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import {
  collect,
  startTestServer,
  type TestServer,
  type TestServerOptions,
  unaryRpcs,
} from "../helpers/test-server.js";

/** The storage backends the integration suites run on, each a describe of its own. */
export const BACKENDS = ["jsonl", "memory", "postgres"] as const;
export type Backend = (typeof BACKENDS)[number];

/** Backends that keep data across a restart. */
export const PERSISTENT_BACKENDS = ["jsonl", "postgres"] as const;

/**
 * Declares `body` once per backend (`backends`, every one by default): a describe named
 * "`name` [backend]", whose servers (started by the function `body` gets) use that backend. The
 * postgres one is skipped, saying why, when the run has no PostgreSQL.
 */
export function describeEachBackend(
  name: string,
  body: (start: StartServer, backend: Backend) => void,
  options: { defaults?: Partial<Config>; backends?: readonly Backend[] } = {},
): void {
  const missing = testDatabases().missing;
  for (const backend of options.backends ?? BACKENDS) {
    describe(
      `${name} [${backend}]`,
      skipWithReason(backend === "postgres" ? missing : undefined),
      () => {
        body(serversClosedAfterEach({ ...options.defaults, storage: backend }), backend);
      },
    );
  }
}

/** The durable count `backend` reports where `count` messages are durable (memory keeps none). */
export function durableOn(backend: Backend, count: number): number {
  return backend === "memory" ? 0 : count;
}

/** The settings that start another server on `server`'s stored data (to restart it). */
export function storageOf(server: TestServer): Partial<Config> {
  return {
    storage: server.config.storage,
    dataDir: server.dataDir,
    databaseUrl: server.config.databaseUrl,
  };
}

/** Starts a test server with a suite's defaults, then `overrides`, applied. */
export type StartServer = (
  overrides?: Partial<Config>,
  options?: TestServerOptions,
) => Promise<TestServer>;

/**
 * Registers an afterEach that closes every server the returned function started during the test
 * (removing its data directory), and returns that function: it starts a test server with
 * `defaults`, then `overrides`, applied.
 */
export function serversClosedAfterEach(defaults: Partial<Config> = {}): StartServer {
  const servers: TestServer[] = [];
  afterEach(async () => {
    // Newest first: servers of one test may share a data directory that close() removes.
    for (const server of servers.splice(0).reverse()) await server.close();
  });
  return async (overrides = {}, options = {}) => {
    const server = await startTestServer({ ...defaults, ...overrides }, options);
    servers.push(server);
    return server;
  };
}

/** The unary RPCs of the generated client, promisified, with the request fields defaulted. */
export function flush(client: SessionStoreClient, sessionId: string): Promise<FlushResponse> {
  return unaryRpcs(client).flush({ sessionId });
}

export async function loadMeta(
  client: SessionStoreClient,
  sessionId: string,
): Promise<SessionMeta> {
  const { meta } = await unaryRpcs(client).loadMeta({ sessionId });
  if (!meta) throw new Error(`LoadMeta of ${sessionId} answered without meta`);
  return meta;
}

export function list(
  client: SessionStoreClient,
  request: Partial<ListRequest>,
): Promise<ListResponse> {
  return unaryRpcs(client).list(request);
}

export function deleteSession(
  client: SessionStoreClient,
  sessionId: string,
): Promise<DeleteResponse> {
  return unaryRpcs(client).delete({ sessionId });
}

/** The raw pages of one Load call. */
export function loadPages(
  client: SessionStoreClient,
  sessionId: string,
  options: Partial<Omit<LoadRequest, "sessionId">> = {},
): Promise<LoadResponse[]> {
  return collect(client.load(LoadRequest.fromPartial({ ...options, sessionId })));
}

/** A Watch call and everything it has received so far, checked to arrive without gaps. */
export interface Watching {
  call: ClientReadableStream<WatchResponse>;
  received: string[];
  ended: Promise<ServiceError | undefined>;
}

/** Starts watching `sessionId` from `fromSeq`. */
export function watch(client: SessionStoreClient, sessionId: string, fromSeq = 0): Watching {
  const call = client.watch({ sessionId, fromSeq });
  const received: string[] = [];
  call.on("data", (page: WatchResponse) => {
    expect(page.firstSeq, "pages join without gaps or repeats").toBe(fromSeq + received.length);
    received.push(...page.messages);
  });
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    call.on("error", resolve);
    call.on("end", () => resolve(undefined));
  });
  return { call, received, ended };
}

/** Awaits `call`, expecting it to fail with `code`; returns the error for further checks. */
export async function expectStatus(
  call: Promise<unknown>,
  code: status,
  details?: RegExp,
): Promise<ServiceError> {
  const error = await call.then(
    (value) => {
      throw new Error(
        `expected ${status[code]}, but the call succeeded with ${JSON.stringify(value)}`,
      );
    },
    (reason: unknown) => reason as ServiceError,
  );
  expect(status[error.code], error.details).toBe(status[code]);
  if (details) expect(error.details).toMatch(details);
  return error;
}

/** Checks that an Append stream's error has `code` and, optionally, matching details. */
export function expectStreamError(
  error: ServiceError | undefined,
  code: status,
  details?: RegExp,
): void {
  expect(error, `the stream should have ended with ${status[code]}`).toBeDefined();
  expect(status[error?.code ?? status.OK], error?.details).toBe(status[code]);
  if (details) expect(error?.details).toMatch(details);
}

/** What a session's file on disk holds: its header's message count and its message lines. */
export interface SessionFileContent {
  headerCount: number;
  lines: string[];
}

export function sessionFilePath(dataDir: string, sessionId: string): string {
  return join(dataDir, `${sessionId}.jsonl`);
}

/** The session's file as written so far, or undefined when there is none. */
export async function readSessionFile(
  dataDir: string,
  sessionId: string,
): Promise<SessionFileContent | undefined> {
  let text: string;
  try {
    text = await readFile(sessionFilePath(dataDir, sessionId), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const [header = "", ...rest] = text.split("\n");
  const { message_count } = JSON.parse(header) as { message_count: number };
  return { headerCount: message_count, lines: rest.filter((line) => line !== "") };
}

/** The message lines written to a session's file so far; none when it has no file yet. */
export async function writtenLines(dataDir: string, sessionId: string): Promise<string[]> {
  return (await readSessionFile(dataDir, sessionId))?.lines ?? [];
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes; resolves to whether it did. A check
 * that throws counts as not yet true: a file polled while the server writes it may be caught
 * between its creation and its first write.
 */
export async function pollUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `count` distinct JSON object messages, tagged so a test can tell them apart. */
export function messages(tag: string, count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, index) => JSON.stringify({ tag, n: from + index }));
}

/** The rule a session id error must state, in pieces a caller would look for. */
export const SESSION_ID_RULE_PARTS = [
  /1-200 characters/,
  /\[A-Za-z0-9\._:@~-\]/,
  /start with '\.'/,
];
