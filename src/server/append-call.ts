import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import type { SessionService } from "../sessions/session-service.js";
import { AppendChain } from "../store/append-chain.js";
import { type AppendRequestBytes, checkDecoded } from "./request-decoding.js";
import { RequestReader } from "./request-reader.js";
import { toServiceError } from "./status.js";
import { send, stopReason } from "./streaming-calls.js";

/** Requests whose acknowledgement is pending before the stream stops reading more. */
const MAX_UNACKNOWLEDGED = 1024;

/**
 * Serves one Append stream. Requests are taken one at a time: each gets its place before the
 * next is read, so a request refused at once stops the stream before anything after it is
 * stored. Waiting for durability is pipelined: acknowledgements go out in request order as each
 * becomes due. The stream's requests form an AppendChain, so when one fails after later ones
 * were admitted, those fail with it and store nothing. When a request fails, the
 * acknowledgements due before it are sent, then the stream ends with its status. Everything
 * it appends goes to `tenant`'s sessions.
 */
export async function serveAppend(
  call: ServerDuplexStream<AppendRequestBytes, AppendResponse>,
  sessions: SessionService,
  tenant: string,
  stopped: AbortSignal,
  log: Logger,
): Promise<void> {
  const requests = new RequestReader<AppendRequestBytes>(call);
  if (stopped.aborted) requests.stop();
  else stopped.addEventListener("abort", () => requests.stop(), { once: true });
  // Sends acknowledgements in order; rejects with the first request that failed after seqs.
  let acknowledgements: Promise<void> = Promise.resolve();
  let acknowledgementFailed = false;
  let unacknowledged = 0;
  let failure: unknown;
  const chain = new AppendChain();
  try {
    for (let request = await requests.next(); request; request = await requests.next()) {
      if (chain.failure) break;
      checkDecoded(request);
      const appending = sessions.append(tenant, request.sessionId, request.messages, {
        ...(request.expectedSeq === undefined ? {} : { expectedSeq: request.expectedSeq }),
        sync: request.sync,
        chain,
        ...(hasAny(request.labels) ? { labels: request.labels } : {}),
      });
      const { ack } = appending instanceof Promise ? await appending : appending;
      if (unacknowledged === 0 && !(ack instanceof Promise)) {
        // Nothing before it waits: answer at once, without a promise chain.
        const blocked = send(call, ack);
        if (blocked) await blocked;
        continue;
      }
      unacknowledged++;
      acknowledgements = acknowledgements
        .then(() => ack)
        .then((ready) => {
          unacknowledged--;
          return send(call, ready);
        });
      acknowledgements.catch(() => {
        acknowledgementFailed = true;
      });
      if (unacknowledged >= MAX_UNACKNOWLEDGED) await acknowledgements;
      if (acknowledgementFailed || chain.failure) break;
    }
    if (requests.wasStopped) throw stopReason(stopped);
  } catch (error) {
    failure = error;
  }
  try {
    await acknowledgements;
  } catch (error) {
    // An earlier request's failure is the one to report.
    failure = error;
  }
  if (failure === undefined) call.end();
  else call.emit("error", toServiceError(failure, log));
}

/** Whether a map field holds anything (without building its list of keys). */
function hasAny(labels: Record<string, string>): boolean {
  for (const _ in labels) return true;
  return false;
}
