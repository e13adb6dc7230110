import { invalidArgument } from "./errors.js";

/** The session id rule of the contract, said the same way in every error. */
export const SESSION_ID_RULE =
  "a session id is 1-200 characters of [A-Za-z0-9._:@~-] and does not start with '.'";

const SESSION_ID_PATTERN = /^[A-Za-z0-9_:@~-][A-Za-z0-9._:@~-]{0,199}$/;

/**
 * Whether `sessionId` follows the contract's rule. The rule keeps ids usable as file names on
 * every backend: no separators, no `..`, no hidden or temporary names (those start with '.').
 */
export function isValidSessionId(sessionId: string): boolean {
  return SESSION_ID_PATTERN.test(sessionId);
}

/** Throws INVALID_ARGUMENT, stating the rule, unless `sessionId` follows it. */
export function checkSessionId(sessionId: string, field = "session id"): void {
  if (!isValidSessionId(sessionId)) {
    throw invalidArgument(`invalid ${field} ${describeId(sessionId)}: ${SESSION_ID_RULE}`);
  }
}

function describeId(sessionId: string): string {
  if (sessionId.length === 0) return "(empty)";
  if (sessionId.length > 40)
    return `${JSON.stringify(sessionId.slice(0, 40))}... (${sessionId.length} characters)`;
  return JSON.stringify(sessionId);
}
