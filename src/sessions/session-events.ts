/**
 * What the session layer tells an observer (metrics) about requests, once per request: it runs
 * on the Append path, so implementations must be cheap and must not throw.
 */
export interface SessionEvents {
  /** An Append request of `messages` (`bytes` of JSON text) to `tenant`'s sessions was acknowledged. */
  appended(tenant: string, messages: number, bytes: number): void;
}
