/**
 * Error codes of the service, numbered as the gRPC status codes they become, so that layers
 * below the server need no gRPC import and the server maps them one to one.
 */
export enum Code {
  Aborted = 10,
  AlreadyExists = 6,
  DataLoss = 15,
  FailedPrecondition = 9,
  Internal = 13,
  InvalidArgument = 3,
  NotFound = 5,
  OutOfRange = 11,
  PermissionDenied = 7,
  Unauthenticated = 16,
  Unimplemented = 12,
  ResourceExhausted = 8,
  Unavailable = 14,
}

/** An error meant for the caller: its message says what to fix. */
export class SessionStoreError extends Error {
  override name = "SessionStoreError";

  /** For ABORTED on expected_seq: the session's actual length, for clients to read as data. */
  readonly actualLength: number | undefined;
  /** For ABORTED on expected_labels_revision: the session's actual labels revision. */
  readonly actualLabelsRevision: number | undefined;
  /** For OUT_OF_RANGE below a trimmed session's first kept seq: that seq. */
  readonly firstSeq: number | undefined;

  constructor(
    readonly code: Code,
    message: string,
    options?: {
      cause?: unknown;
      actualLength?: number;
      actualLabelsRevision?: number;
      firstSeq?: number;
    },
  ) {
    super(message, options);
    this.actualLength = options?.actualLength;
    this.actualLabelsRevision = options?.actualLabelsRevision;
    this.firstSeq = options?.firstSeq;
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

/** NOT_FOUND for a session that an operation needs to exist. */
export function sessionNotFound(sessionId: string): SessionStoreError {
  return new SessionStoreError(Code.NotFound, `session ${sessionId} does not exist`);
}

/** ABORTED for an expected_labels_revision that is not the session's labels revision. */
export function labelsRevisionMismatch(
  sessionId: string,
  expectedRevision: number,
  actualLabelsRevision: number,
): SessionStoreError {
  return new SessionStoreError(
    Code.Aborted,
    `expected_labels_revision is ${expectedRevision} but the labels of session ${sessionId} are ` +
      `at revision ${actualLabelsRevision}; read them again (LoadMeta) and retry`,
    { actualLabelsRevision },
  );
}

/** OUT_OF_RANGE for a read (or fork) below a trimmed session's first kept seq. */
export function trimmedBefore(sessionId: string, seq: number, firstSeq: number): SessionStoreError {
  return new SessionStoreError(
    Code.OutOfRange,
    `messages of session ${sessionId} before seq ${firstSeq} were trimmed, so seq ${seq} is no ` +
      `longer kept; read from seq ${firstSeq} (or from 0, which means the first kept message)`,
    { firstSeq },
  );
}

/** OUT_OF_RANGE for a seq past a session's length (a fork, rewind or trim point). */
export function pastTheEnd(
  sessionId: string,
  field: string,
  seq: number,
  length: number,
): SessionStoreError {
  return new SessionStoreError(
    Code.OutOfRange,
    `${field} is ${seq} but session ${sessionId} has ${length} messages; it can be at most ${length}`,
    { actualLength: length },
  );
}

/** ALREADY_EXISTS for a fork whose new session id is taken. */
export function sessionExists(sessionId: string): SessionStoreError {
  return new SessionStoreError(
    Code.AlreadyExists,
    `session ${sessionId} already exists; fork into a new session id (or delete it first)`,
  );
}
