import { Code, SessionStoreError } from "../../errors.js";
import type { FailedOutcome } from "../storage.js";

/**
 * The caller-facing error for a database call that failed: UNAVAILABLE (safe to retry; the
 * database is down, unreachable or overloaded), saying whether the request may have been stored
 * (the connection died while its commit was on the way) or not. The database's own message goes
 * to the log, not to the client.
 */
export function databaseFailure(
  action: string,
  cause: unknown,
  outcome: FailedOutcome = "nothing stored",
): SessionStoreError {
  const advice =
    outcome === "nothing stored"
      ? "nothing of this request was stored; retry"
      : "this request may still be stored: resend it with expected_seq (or read the session's length first) so that it is stored once";
  return new SessionStoreError(
    Code.Unavailable,
    `the database failed to ${action} (${describeDatabaseError(cause)}); ${advice}`,
    { cause },
  );
}

/** A short, path-free description: the SQLSTATE or system error code and its class. */
export function describeDatabaseError(cause: unknown): string {
  const { code, message } = cause as { code?: string; message?: string };
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return `SQLSTATE ${code}`;
  if (typeof code === "string") return code;
  if (typeof message === "string" && /timeout/i.test(message)) return "timed out";
  return "connection failed";
}
