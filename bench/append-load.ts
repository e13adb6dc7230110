import type { ServiceError } from "@grpc/grpc-js";
import type { AppendRequest, SessionStoreClient } from "../gen/sessionstore/v1/session_store.js";
import { takeMessages } from "./payloads.js";
import { nowMs } from "./stats.js";

/** A streaming-append workload: one Append stream per session, all at once. */
export interface AppendLoad {
  /** One stream each, all concurrent. */
  sessionIds: readonly string[];
  requestsPerStream: number;
  messagesPerRequest: number;
  /** Requests sent and not yet acknowledged, per stream, at most. */
  window: number;
  sync: boolean;
  payloads: readonly string[];
}

export interface AppendResult {
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** From sending each request to receiving its ack, in milliseconds. */
  ackLatenciesMs: number[];
  /** Wall-clock bounds of the run (ms since the epoch), to match server-side traces. */
  startedAtEpochMs: number;
  endedAtEpochMs: number;
}

/** Distinct requests each stream cycles through (encoding still happens on every send). */
const REQUEST_VARIANTS = 16;

/**
 * Runs `load` against any server of the SessionStore service (the real one or the echo) through
 * the generated client: each stream keeps `window` requests in flight until it has sent
 * `requestsPerStream`, then half-closes and waits for the server to end it.
 */
export function driveAppend(client: SessionStoreClient, load: AppendLoad): Promise<AppendResult> {
  return measureStreams(load, (sessionId, stream, latencies) =>
    driveStream(client, sessionId, stream, load, latencies),
  );
}

/**
 * Runs one `drive` per session of `load`, all at once, and measures the whole: the timing and
 * result every target (the server, the echo, Redis) reports alike. Each drive records its
 * request-to-ack latencies in `latencies`.
 */
export async function measureStreams(
  load: AppendLoad,
  drive: (sessionId: string, stream: number, latencies: number[]) => Promise<void>,
): Promise<AppendResult> {
  const latencies: number[] = [];
  const startedAtEpochMs = Date.now();
  const started = nowMs();
  await Promise.all(
    load.sessionIds.map((sessionId, stream) => drive(sessionId, stream, latencies)),
  );
  const seconds = (nowMs() - started) / 1000;
  const messages = load.sessionIds.length * load.requestsPerStream * load.messagesPerRequest;
  return {
    messages,
    seconds,
    messagesPerSecond: messages / seconds,
    ackLatenciesMs: latencies,
    startedAtEpochMs,
    endedAtEpochMs: Date.now(),
  };
}

function driveStream(
  client: SessionStoreClient,
  sessionId: string,
  stream: number,
  load: AppendLoad,
  latencies: number[],
): Promise<void> {
  const requests: AppendRequest[] = [];
  for (let variant = 0; variant < REQUEST_VARIANTS; variant++) {
    const offset = (stream * REQUEST_VARIANTS + variant) * load.messagesPerRequest;
    requests.push({
      sessionId,
      messages: takeMessages(load.payloads, offset, load.messagesPerRequest),
      sync: load.sync,
      labels: {},
    });
  }
  return new Promise((resolve, reject) => {
    const call = client.append();
    const sentAt: number[] = [];
    let sent = 0;
    let acknowledged = 0;
    const sendMore = () => {
      while (sent < load.requestsPerStream && sent - acknowledged < load.window) {
        sentAt.push(nowMs());
        call.write(requests[sent % REQUEST_VARIANTS] as AppendRequest);
        sent++;
      }
    };
    let halfClosed = false;
    const pump = () => {
      sendMore();
      if (sent === load.requestsPerStream && !halfClosed) {
        halfClosed = true;
        call.end();
      }
    };
    call.on("data", () => {
      latencies.push(nowMs() - (sentAt[acknowledged] as number));
      acknowledged++;
      pump();
    });
    call.on("error", (error: ServiceError) => reject(error));
    call.on("end", () =>
      acknowledged === load.requestsPerStream
        ? resolve()
        : reject(new Error(`stream ${sessionId} ended after ${acknowledged} acks`)),
    );
    pump();
  });
}
