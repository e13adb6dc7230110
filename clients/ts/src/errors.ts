import { Metadata, type ServiceError, status } from "@grpc/grpc-js";

/** The gRPC status codes, as numbers: `error.code === Status.ABORTED`. */
export { status as Status } from "@grpc/grpc-js";

/**
 * Trailing metadata key in which the server reports a session's length: on ABORTED (an
 * `expectedSeq` that is not the length) and on OUT_OF_RANGE past the session's end.
 */
export const ACTUAL_LENGTH_KEY = "sessionstore-actual-length";
/** Trailing metadata key of ABORTED for an `expectedLabelsRevision` that is not the actual one. */
export const ACTUAL_LABELS_REVISION_KEY = "sessionstore-actual-labels-revision";
/** Trailing metadata key of OUT_OF_RANGE for a read below a trimmed session's first kept seq. */
export const FIRST_SEQ_KEY = "sessionstore-first-seq";

/**
 * The one error every call of this client fails with: a gRPC status code, the server's message
 * (which says what to fix) and what the server reported with it: for ABORTED, the session's
 * actual length or labels revision; for OUT_OF_RANGE, its first kept seq or its length.
 */
export class SessionStoreError extends Error {
  override name = "SessionStoreError";
  /** The gRPC status code, e.g. `Status.ABORTED` (10). */
  readonly code: status;
  /** The status message, without the code prefix `message` has. */
  readonly details: string;
  /** The trailing metadata the call ended with (empty for errors raised by the client). */
  readonly metadata: Metadata;
  /**
   * The session's actual length, from the trailing metadata `sessionstore-actual-length`: for
   * ABORTED (an `expectedSeq` that is not the session's length, in `append` or `rewind`), and for
   * OUT_OF_RANGE (a fork, rewind or trim point past the session's end).
   */
  readonly actualLength: number | undefined;
  /**
   * For ABORTED from `setLabels` (an `expectedLabelsRevision` that is not the session's): its
   * actual labels revision, from `sessionstore-actual-labels-revision`.
   */
  readonly actualLabelsRevision: number | undefined;
  /**
   * For OUT_OF_RANGE below a trimmed session's start (a `load` from, or `fork` at, a seq that was
   * trimmed): the first seq kept, from `sessionstore-first-seq`. Read from there.
   */
  readonly firstSeq: number | undefined;

  constructor(
    code: status,
    details: string,
    options: { metadata?: Metadata; cause?: unknown } = {},
  ) {
    super(`${status[code] ?? code}: ${details}`, { cause: options.cause });
    this.code = code;
    this.details = details;
    this.metadata = options.metadata ?? new Metadata();
    this.actualLength = readNumber(this.metadata, ACTUAL_LENGTH_KEY);
    this.actualLabelsRevision = readNumber(this.metadata, ACTUAL_LABELS_REVISION_KEY);
    this.firstSeq = readNumber(this.metadata, FIRST_SEQ_KEY);
  }

  /** The code's name, e.g. "ABORTED". */
  get codeName(): string {
    return status[this.code] ?? String(this.code);
  }

  /** Wraps what a gRPC call failed with; a SessionStoreError passes through unchanged. */
  static from(error: unknown): SessionStoreError {
    if (error instanceof SessionStoreError) return error;
    if (isServiceError(error)) {
      return new SessionStoreError(error.code, error.details, {
        metadata: error.metadata,
        cause: error,
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new SessionStoreError(status.UNKNOWN, message, { cause: error });
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === "number" &&
    typeof (error as Partial<ServiceError>).details === "string"
  );
}

/** A decimal number the server put in the trailing metadata under `key`, if it did. */
function readNumber(metadata: Metadata, key: string): number | undefined {
  const [value] = metadata.get(key);
  if (typeof value !== "string" || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** The error a call ends with when its AbortSignal fires: CANCELLED, the signal's reason as cause. */
export function abortError(signal: AbortSignal): SessionStoreError {
  return new SessionStoreError(status.CANCELLED, "the call was aborted by its AbortSignal", {
    cause: signal.reason,
  });
}
