import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type handleBidiStreamingCall,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
} from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BenchContext } from "../../bench/context.js";
import { SIZES } from "../../bench/context.js";
import { runLoadgen } from "../../bench/loadgen.js";
import { makePayloads } from "../../bench/payloads.js";
import {
  type AppendRequest,
  type AppendResponse,
  SessionStoreService,
} from "../../gen/sessionstore/v1/session_store.js";
import { missingToolchains, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { makeTempDir } from "../helpers/test-server.js";

const missing = missingToolchains("go");
/** A first build fetches its modules from the Go proxy and compiles grpc-go, pgx and nats.go. */
const BUILD_TIMEOUT_MS = 300_000;
/** How long the server below holds each ack: the latency the load client must report. */
const ACK_DELAY_MS = 20;

/**
 * The Go load client (bench/loadgen, built here as scripts/setup-bench.sh builds it) against a
 * grpc-js server that acks each Append request after a fixed delay: its rate, latencies and
 * counts must follow from that delay, or the bench's figures would be wrong without failing.
 */
describe("bench load client", skipWithout(missing), () => {
  let server: Server;
  let address: string;
  let directory: string;
  let loadgen: string;
  const received: AppendRequest[] = [];

  beforeAll(async () => {
    requireTools(missing);
    directory = await makeTempDir("bench-loadgen-");
    loadgen = join(directory, "loadgen");
    await promisify(execFile)("go", ["build", "-o", loadgen, "."], {
      cwd: join(REPOSITORY, "bench/loadgen"),
      timeout: BUILD_TIMEOUT_MS,
    });
    const append: handleBidiStreamingCall<AppendRequest, AppendResponse> = (
      call: ServerDuplexStream<AppendRequest, AppendResponse>,
    ) => {
      call.on("data", (request: AppendRequest) => {
        received.push(request);
        setTimeout(
          () =>
            call.write({ sessionId: request.sessionId, firstSeq: 0, nextSeq: 0, durableCount: 0 }),
          ACK_DELAY_MS,
        );
      });
      call.on("end", () => setTimeout(() => call.end(), ACK_DELAY_MS * 2));
    };
    server = new Server();
    server.addService(SessionStoreService, { append });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    address = `127.0.0.1:${port}`;
  }, BUILD_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    server.forceShutdown();
    await rm(directory, { recursive: true, force: true });
  });

  it("keeps the window full, counts the acks of the measured window and times them", async () => {
    const context = {
      sizes: { ...SIZES.quick, sustained: { warmupMs: 200, durationMs: 1_000 } },
      workDir: directory,
      payloads: makePayloads(64),
      once: <T>(_key: string, make: () => Promise<T>) => make(),
    } as unknown as BenchContext;
    const shape = { streams: 2, batch: 10, window: 4, sync: true };
    const run = await runLoadgen(
      context,
      loadgen,
      { kind: "grpc", address, pid: process.pid },
      shape,
      "probe",
    );

    // Each stream has `window` requests waiting ACK_DELAY_MS at a time.
    const expected = ((shape.streams * shape.window * 1000) / ACK_DELAY_MS) * shape.batch;
    // A window of 1 would make a quarter of it; timers of a busy machine make somewhat less.
    expect(run.messagesPerSecond).toBeGreaterThan(expected * 0.3);
    expect(run.messagesPerSecond).toBeLessThanOrEqual(expected * 1.05);
    expect(run.messages % shape.batch).toBe(0);
    expect(run.messages).toBeLessThanOrEqual(received.length * shape.batch);
    expect(run.p50Ms).toBeGreaterThanOrEqual(ACK_DELAY_MS);
    expect(run.p99Ms).toBeGreaterThanOrEqual(run.p50Ms);
    expect(run.endedAtEpochMs - run.startedAtEpochMs).toBeGreaterThanOrEqual(990);
    expect(run.clientCpu).toBeGreaterThan(0);
    expect(run.peerCpu?.main).toBeGreaterThan(0);
    // The load as asked: its sessions, batch size, sync flag and the bench's messages.
    expect(new Set(received.map((request) => request.sessionId))).toEqual(
      new Set(["probe-0", "probe-1"]),
    );
    expect(received.every((r) => r.sync && r.messages.length === shape.batch)).toBe(true);
    expect(received[0]?.messages[0]).toBe(context.payloads[0]);
  });
});
