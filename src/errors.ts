/**
 * Error codes of the service, numbered as the gRPC status codes they become, so that layers
 * below the server need no gRPC import and the server maps them one to one.
 */
export enum Code {
  Aborted = 10,
  DataLoss = 15,
  Internal = 13,
  InvalidArgument = 3,
  NotFound = 5,
  ResourceExhausted = 8,
  Unavailable = 14,
}

/** An error meant for the caller: its message says what to fix. */
export class SessionStoreError extends Error {
  override name = "SessionStoreError";

  constructor(
    readonly code: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand for a caller's bad input. */
export function invalidArgument(message: string): SessionStoreError {
  return new SessionStoreError(Code.InvalidArgument, message);
}
