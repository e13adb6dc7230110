import { status } from "@grpc/grpc-js";
import { abortError, SessionStoreError } from "./errors.js";

/**
 * How calls that are safe to repeat are retried, and how streams reconnect, when the server is
 * UNAVAILABLE (restarting, shutting down, unreachable, or the connection dropped): exponential
 * backoff with jitter, from `initialDelayMs` doubling up to `maxDelayMs`, at most `maxAttempts`
 * attempts in a row without progress.
 */
export interface RetryPolicy {
  /** Attempts in a row that fail before the call gives up; 1 disables retries. Default 10. */
  maxAttempts: number;
  /** Delay before the first retry. Default 100 ms. */
  initialDelayMs: number;
  /** Longest delay between attempts. Default 5000 ms. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 10,
  initialDelayMs: 100,
  maxDelayMs: 5000,
};

/**
 * Whether a failure says nothing about the call itself, so that trying again (on another
 * replica, perhaps) is the answer: UNAVAILABLE, the status the server and grpc-js use for "the
 * server is going away or cannot be reached", and a stream reset by the transport (INTERNAL
 * "Received RST_STREAM"), as a load balancer or proxy does when the replica behind it dies.
 * Either way the call may or may not have taken effect: appends are resent with expected_seq,
 * which the server recognises, and reads are simply read again.
 */
export function isRetriable(error: SessionStoreError): boolean {
  return (
    error.code === status.UNAVAILABLE ||
    (error.code === status.INTERNAL && error.message.includes("Received RST_STREAM"))
  );
}

/** The delay before retry number `retry` (1 for the first), with ±25 % jitter. */
export function backoffDelay(policy: RetryPolicy, retry: number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (retry - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Resolves after `ms`, or rejects with the abort error when the signal fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, fails with a status that is not retriable, runs out of
 * attempts, or would retry past `deadline` (ms since the epoch). Every failure is a
 * SessionStoreError.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  options: { deadline: number | undefined; signal: AbortSignal | undefined },
  attempt: () => Promise<T>,
): Promise<T> {
  for (let retry = 1; ; retry++) {
    try {
      return await attempt();
    } catch (caught) {
      const error = SessionStoreError.from(caught);
      const delay = backoffDelay(policy, retry);
      const pastDeadline = options.deadline !== undefined && Date.now() + delay >= options.deadline;
      if (!isRetriable(error) || retry >= policy.maxAttempts || pastDeadline) throw error;
      await sleep(delay, options.signal);
    }
  }
}
