import { lengthMismatch, pastTheEnd, trimmedBefore } from "../errors.js";

/** What every backend checks of a seq against a session's kept messages [firstSeq, length). */
export interface LogBounds {
  firstSeq: number;
  length: number;
}

/**
 * Where a read from `fromSeq` starts: 0 means the first kept message; any other seq below it is
 * OUT_OF_RANGE naming the first kept seq.
 */
export function readStart(sessionId: string, fromSeq: number, bounds: LogBounds): number {
  if (fromSeq === 0) return bounds.firstSeq;
  if (fromSeq < bounds.firstSeq) throw trimmedBefore(sessionId, fromSeq, bounds.firstSeq);
  return fromSeq;
}

/** A fork point: within the kept messages or at the end. */
export function checkForkPoint(sessionId: string, atSeq: number, bounds: LogBounds): void {
  if (atSeq > bounds.length) throw pastTheEnd(sessionId, "at_seq", atSeq, bounds.length);
  if (atSeq < bounds.firstSeq) throw trimmedBefore(sessionId, atSeq, bounds.firstSeq);
}

/** A rewind: the session's length is `expectedSeq` (when given) and `toSeq` is kept or the end. */
export function checkRewind(
  sessionId: string,
  toSeq: number,
  expectedSeq: number | undefined,
  bounds: LogBounds,
): void {
  if (expectedSeq !== undefined && expectedSeq !== bounds.length) {
    throw lengthMismatch(sessionId, expectedSeq, bounds.length);
  }
  if (toSeq > bounds.length) throw pastTheEnd(sessionId, "to_seq", toSeq, bounds.length);
  if (toSeq < bounds.firstSeq) throw trimmedBefore(sessionId, toSeq, bounds.firstSeq);
}

/** A trim point: at most the session's length. */
export function checkTrim(sessionId: string, beforeSeq: number, bounds: LogBounds): void {
  if (beforeSeq > bounds.length)
    throw pastTheEnd(sessionId, "before_seq", beforeSeq, bounds.length);
}
