import { Metadata, status } from "@grpc/grpc-js";
import { abortError, SessionStoreError } from "./errors.js";

/** Request metadata (headers): values are strings, or Buffers for keys ending in `-bin`. */
export type MetadataInit = Record<string, string | Buffer | ReadonlyArray<string | Buffer>>;

/**
 * Metadata sent on every call: fixed, or a function asked before each call (and each reconnect of
 * a stream), e.g. to send a token that is refreshed.
 */
export type MetadataSource = MetadataInit | (() => MetadataInit | Promise<MetadataInit>);

/** A bearer token: fixed, or a function asked before each call (and reconnect) for a fresh one. */
export type TokenSource = string | (() => string | Promise<string>);

/** `metadata` with `authorization: Bearer <token>` added (the token's value wins). */
export function withToken(
  metadata: MetadataSource | undefined,
  token: TokenSource | undefined,
): MetadataSource | undefined {
  if (token === undefined) return metadata;
  return async () => {
    const fixed = typeof metadata === "function" ? await metadata() : metadata;
    let value: string;
    try {
      value = typeof token === "function" ? await token() : token;
    } catch (error) {
      // As the Python and Go clients report it: the call could not authenticate.
      throw new SessionStoreError(
        status.UNAUTHENTICATED,
        `the token function failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    return { ...fixed, authorization: `Bearer ${value}` };
  };
}

/** Options every call takes. */
export interface CallOptions {
  /**
   * Fail with DEADLINE_EXCEEDED if the call (retries included) has not finished after this long.
   * Defaults to the client's `timeoutMs`; `watch` and `appender` streams have none by default.
   */
  timeoutMs?: number;
  /** Aborting cancels the call, which then fails with CANCELLED (the signal's reason as cause). */
  signal?: AbortSignal;
  /** Sent with this call, after the client's metadata (a key set in both takes this value). */
  metadata?: MetadataInit;
}

/** The metadata key naming the session a call is about, so that a router can hash on it. */
export const SESSION_ID_KEY = "x-session-id";

/**
 * Builds a call's metadata: the client's, then the call's, then `x-session-id` when the call is
 * about one session.
 */
export async function callMetadata(
  source: MetadataSource | undefined,
  perCall: MetadataInit | undefined,
  sessionId: string | undefined,
): Promise<Metadata> {
  const metadata = new Metadata();
  const fixed = typeof source === "function" ? await source() : source;
  for (const init of [fixed, perCall]) {
    for (const [key, value] of Object.entries(init ?? {})) {
      metadata.remove(key);
      for (const item of Array.isArray(value) ? value : [value]) metadata.add(key, item);
    }
  }
  if (sessionId !== undefined) metadata.set(SESSION_ID_KEY, sessionId);
  return metadata;
}

/** The absolute deadline (ms since the epoch) of a call started now, or undefined for none. */
export function deadlineFrom(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}

/** Throws the abort error if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Cancels `call` when `signal` fires; returns the function that stops listening (call it once the
 * call has ended).
 */
export function cancelOnAbort(
  signal: AbortSignal | undefined,
  call: { cancel(): void },
): () => void {
  if (!signal) return () => {};
  const cancel = () => call.cancel();
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}
