import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { append, makeTempDir, readLikeMotosan, unaryRpcs } from "../helpers/test-server.js";

/**
 * Issue 3, "Acknowledged data is never lost", at shutdown: SIGTERM while many streams write, and
 * SIGTERM while clients that never read hold calls open. SESSIONSTORE_SHUTDOWN_DEADLINE_MS sets
 * how long the process may take to exit after SIGTERM under load (default 10 s).
 */
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const GENERATED_CLIENT = fileURLToPath(
  new URL("../../dist/gen/sessionstore/v1/session_store.js", import.meta.url),
);

/**
 * A client (run with `node -e`, arguments: address, generated client module) that opens a Watch
 * and an Append stream it writes to without end, and reads nothing but the first ack; it prints
 * a line once both are busy (the server has taken some appends), for the test to stop it.
 */
const HUNG_CLIENT = `
const { credentials } = await import("@grpc/grpc-js");
const { SessionStoreClient } = await import(process.argv[2]);
const client = new SessionStoreClient(process.argv[1], credentials.createInsecure());
const watch = client.watch({ sessionId: "watched", fromSeq: 0 });
watch.on("error", () => {});
const append = client.append();
append.on("error", () => {});
let n = 0;
const writeMore = () => {
  while (append.write({ sessionId: "unread-acks", messages: ['{"unread":' + n++ + '}'], sync: false, labels: {} })) {}
  append.once("drain", writeMore);
};
writeMore();
// Busy once the server has taken some of its appends (an ack came back) and a little more time
// has passed: on a loaded machine 300 ms alone may go by before the server reads a request.
let acknowledged = false;
append.once("data", () => { acknowledged = true; });
const busy = setInterval(() => {
  if (!acknowledged) return;
  clearInterval(busy);
  console.log("busy");
}, 300);
setInterval(() => {}, 1000);
`;

const DEADLINE_MS = Number(process.env.SESSIONSTORE_SHUTDOWN_DEADLINE_MS ?? 10_000);

const STREAMS = 50;
/** Requests a writer keeps unacknowledged. */
const WINDOW = 4;
/** Sessions several streams write to without expected_seq: acks say where each message went. */
const SHARED_SESSIONS = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to the exit code and how long after `since` the process exited, or to "timeout". */
async function exitWithin(
  server: ChildServer,
  since: number,
  ms: number,
): Promise<{ code: number | string; elapsedMs: number } | "timeout"> {
  const exited = server.exited.then((code) => ({ code, elapsedMs: Date.now() - since }));
  return Promise.race([exited, sleep(ms).then(() => "timeout" as const)]);
}

/** A session file read directly: its header and message lines, checked to be complete. */
async function readCompleteFile(dataDir: string, sessionId: string): Promise<string[]> {
  const text = await readFile(join(dataDir, `${sessionId}.jsonl`), "utf8");
  expect(text.endsWith("\n"), `${sessionId}.jsonl ends with a complete line`).toBe(true);
  const [header = "", ...lines] = text.slice(0, -1).split("\n");
  expect(JSON.parse(header), `${sessionId} header`).toMatchObject({
    session_id: sessionId,
    message_count: lines.length,
  });
  expect(readLikeMotosan(text)).toHaveLength(lines.length);
  return lines;
}

interface WriterOutcome {
  acks: number;
  error?: ServiceError;
}

/**
 * A writer that keeps WINDOW requests in flight on one Append stream until the stream ends,
 * alternating between its own session and a shared one. Every ack is recorded in `acknowledged`
 * (session -> seq -> message); the messages it sent are in `sent`.
 */
function startWriter(
  server: ChildServer,
  index: number,
  acknowledged: Map<string, Map<number, string>>,
  sent: Set<string>,
): { outcome: Promise<WriterOutcome>; acks: () => number } {
  const stream = server.client.append();
  const inFlight: { sessionId: string; messages: string[] }[] = [];
  let counter = 0;
  let acks = 0;
  let open = true;
  const sendOne = () => {
    const sessionId = counter % 2 === 0 ? `own-${index}` : `shared-${index % SHARED_SESSIONS}`;
    const messages = Array.from(
      { length: 1 + (counter % 3) },
      (_, i) => `{"writer":${index},"request":${counter},"i":${i},"text":"caf\\u00e9 🦀"}`,
    );
    counter++;
    for (const message of messages) sent.add(message);
    inFlight.push({ sessionId, messages });
    stream.write({ sessionId, messages, sync: false, labels: {} });
  };
  const outcome = new Promise<WriterOutcome>((resolve) => {
    stream.on("data", (ack: AppendResponse) => {
      const request = inFlight.shift();
      if (!request) throw new Error(`writer ${index}: an ack for no request`);
      acks++;
      let log = acknowledged.get(request.sessionId);
      if (!log) {
        log = new Map();
        acknowledged.set(request.sessionId, log);
      }
      expect(ack.sessionId).toBe(request.sessionId);
      expect(ack.nextSeq - ack.firstSeq).toBe(request.messages.length);
      request.messages.forEach((message, i) => {
        log.set(ack.firstSeq + i, message);
      });
      if (open) sendOne();
    });
    const ended = (error?: ServiceError) => {
      if (!open) return;
      open = false;
      resolve({ acks, ...(error ? { error } : {}) });
    };
    stream.on("error", ended);
    stream.on("end", () => ended());
  });
  for (let i = 0; i < WINDOW; i++) sendOne();
  return { outcome, acks: () => acks };
}

describe("shutdown under load", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function startIn(args: string[]): Promise<{ server: ChildServer; dataDir: string }> {
    const dataDir = await makeTempDir("sessionstore-shutdown-");
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startChildServer(["--data-dir", dataDir, ...args]);
    cleanups.push(async () => {
      server.client.close();
      server.process.kill("SIGKILL");
    });
    return { server, dataDir };
  }

  it(`SIGTERM while ${STREAMS} streams write: every ack is on disk, streams end UNAVAILABLE, exit 0 within ${DEADLINE_MS} ms`, async () => {
    // Default settings: buffered durability, flush at 20 messages or after 5 s.
    const { server, dataDir } = await startIn([]);
    const acknowledged = new Map<string, Map<number, string>>();
    const sent = new Set<string>();
    const writers = Array.from({ length: STREAMS }, (_, index) =>
      startWriter(server, index, acknowledged, sent),
    );
    // Mid-way: every stream is flowing.
    await expect
      .poll(() => writers.every((writer) => writer.acks() >= 5), { timeout: 15_000 })
      .toBe(true);
    await sleep(300);

    const signalled = Date.now();
    server.process.kill("SIGTERM");
    const exit = await exitWithin(server, signalled, DEADLINE_MS);
    expect(exit, `the process exits within ${DEADLINE_MS} ms of SIGTERM`).not.toBe("timeout");
    if (exit === "timeout") return;
    expect(exit.code).toBe(0);
    const outcomes = await Promise.all(writers.map((writer) => writer.outcome));
    const endings = outcomes.map((outcome) =>
      outcome.error ? status[outcome.error.code] : "ended normally",
    );
    expect(new Set(endings), "how the streams ended").toEqual(new Set(["UNAVAILABLE"]));
    for (const outcome of outcomes) expect(outcome.error?.details).toMatch(/shutting down/);

    // Read the files directly: each holds exactly the acknowledged messages, at their seqs.
    let total = 0;
    for (const [sessionId, log] of acknowledged) {
      const lines = await readCompleteFile(dataDir, sessionId);
      const missing = [...log].filter(([seq, message]) => lines[seq] !== message);
      expect(missing, `${sessionId}: acknowledged messages not on disk`).toEqual([]);
      // Nothing stored without an ack: the acks tile the file, so it is in order, exactly once.
      expect(lines.length, `${sessionId}: lines on disk vs. acknowledged`).toBe(log.size);
      expect(new Set(lines).size).toBe(lines.length);
      for (const line of lines) expect(sent.has(line)).toBe(true);
      total += lines.length;
    }
    console.log(
      `shutdown under load: ${STREAMS} streams, ${total} acknowledged messages in ` +
        `${acknowledged.size} sessions, exit ${exit.code} ${exit.elapsedMs} ms after SIGTERM`,
    );
    expect(
      server.logs.some((entry) => entry.msg === "streams did not end in time; cancelling them"),
    ).toBe(false);
  });

  it("exits 0 about --shutdown-timeout-ms after SIGTERM while a hung client holds a Watch and an Append stream", async () => {
    const timeoutMs = 500;
    const { server, dataDir } = await startIn([
      "--shutdown-timeout-ms",
      String(timeoutMs),
      "--flush-interval-ms",
      "600000",
    ]);
    // A client process that is then stopped: it reads nothing more, not even at the TCP level,
    // so HTTP/2 flow control soon blocks the server's responses to it.
    const hung = spawn(
      process.execPath,
      ["--input-type=module", "-e", HUNG_CLIENT, server.address, GENERATED_CLIENT],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    cleanups.push(async () => hung.kill("SIGKILL"));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: hung.stdout as NodeJS.ReadableStream }).once("line", () =>
        resolve(),
      );
      hung.once("exit", (code) => reject(new Error(`the client process exited (${code})`)));
    });
    hung.kill("SIGSTOP");

    // More than the hung watcher can have in flight however the server pages it (pages are at
    // most about 1 MB; grpc-js queues 16 responses, HTTP/2 allows a 64 KB window). Writers are not
    // slowed by it.
    const watched = Array.from(
      { length: 6000 },
      (_, i) => `{"i":${i},"pad":"${"w".repeat(4000)}"}`,
    );
    for (let from = 0; from < watched.length; from += 250) {
      await append(server.client, [
        { sessionId: "watched", messages: watched.slice(from, from + 250) },
      ]);
    }
    // And a session that only the shutdown's flush writes (fewer than --flush-messages).
    const buffered = Array.from({ length: 5 }, (_, i) => `{"buffered":${i}}`);
    await append(server.client, [{ sessionId: "pending", messages: buffered }]);
    expect((await unaryRpcs(server.client).loadMeta({ sessionId: "pending" })).meta).toMatchObject({
      messageCount: 5,
      durableCount: 0,
    });

    const signalled = Date.now();
    server.process.kill("SIGTERM");
    const exit = await exitWithin(server, signalled, timeoutMs + 5_000);
    expect(exit, "the process exits despite the hung client").not.toBe("timeout");
    if (exit === "timeout") return;
    expect(exit.code).toBe(0);
    console.log(
      `hung client: exit ${exit.code} ${exit.elapsedMs} ms after SIGTERM ` +
        `(--shutdown-timeout-ms ${timeoutMs})`,
    );
    // When the hung client's streams were stuck (usually: how much the kernel's socket buffers
    // absorb varies), the server waited the timeout for them, then cancelled them.
    const waited = server.logs.some(
      (entry) => entry.msg === "streams did not end in time; cancelling them",
    );
    if (waited) expect(exit.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(exit.elapsedMs).toBeLessThan(timeoutMs + 3_000);

    // Shutdown still wrote every buffer, in complete files.
    expect(await readCompleteFile(dataDir, "pending")).toEqual(buffered);
    expect(await readCompleteFile(dataDir, "watched")).toEqual(watched);
    // What the server took of the hung client's appends is stored in order, without a gap.
    const taken = await readCompleteFile(dataDir, "unread-acks");
    expect(taken.length).toBeGreaterThan(0);
    expect(taken).toEqual(Array.from({ length: taken.length }, (_, i) => `{"unread":${i}}`));
  });
});
