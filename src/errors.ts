/**
 * Error codes of the service, numbered as the gRPC status codes they become, so that layers
 * below the server need no gRPC import and the server maps them one to one.
 */
export enum Code {
  Aborted = 10,
  DataLoss = 15,
  FailedPrecondition = 9,
  Internal = 13,
  InvalidArgument = 3,
  NotFound = 5,
  PermissionDenied = 7,
  Unauthenticated = 16,
  ResourceExhausted = 8,
  Unavailable = 14,
}

/** An error meant for the caller: its message says what to fix. */
export class SessionStoreError extends Error {
  override name = "SessionStoreError";

  /** For ABORTED on expected_seq: the session's actual length, for clients to read as data. */
  readonly actualLength: number | undefined;

  constructor(
    readonly code: Code,
    message: string,
    options?: { cause?: unknown; actualLength?: number },
  ) {
    super(message, options);
    this.actualLength = options?.actualLength;
  }
}

/** Shorthand for a caller's bad input. */
export function invalidArgument(message: string): SessionStoreError {
  return new SessionStoreError(Code.InvalidArgument, message);
}

/** ABORTED for an expected_seq that is not the session's length. */
export function lengthMismatch(
  sessionId: string,
  expectedSeq: number,
  actualLength: number,
): SessionStoreError {
  return new SessionStoreError(
    Code.Aborted,
    `expected_seq is ${expectedSeq} but session ${sessionId} has ${actualLength} messages; ` +
      "reload it and retry with expected_seq set to its length",
    { actualLength },
  );
}
