import { Metadata, type ServiceError, status } from "@grpc/grpc-js";

/** The gRPC status codes, as numbers: `error.code === Status.ABORTED`. */
export { status as Status } from "@grpc/grpc-js";

/** Trailing metadata key in which the server reports a session's length on ABORTED. */
export const ACTUAL_LENGTH_KEY = "sessionstore-actual-length";

/**
 * The one error every call of this client fails with: a gRPC status code, the server's message
 * (which says what to fix) and, for ABORTED, the session's actual length.
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
   * For ABORTED (an `expectedSeq` that is not the session's length): the session's actual
   * length, from the trailing metadata `sessionstore-actual-length`.
   */
  readonly actualLength: number | undefined;

  constructor(
    code: status,
    details: string,
    options: { metadata?: Metadata; cause?: unknown } = {},
  ) {
    super(`${status[code] ?? code}: ${details}`, { cause: options.cause });
    this.code = code;
    this.details = details;
    this.metadata = options.metadata ?? new Metadata();
    this.actualLength = code === status.ABORTED ? readActualLength(this.metadata) : undefined;
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

function readActualLength(metadata: Metadata): number | undefined {
  const [value] = metadata.get(ACTUAL_LENGTH_KEY);
  if (typeof value !== "string" || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** The error a call ends with when its AbortSignal fires: CANCELLED, the signal's reason as cause. */
export function abortError(signal: AbortSignal): SessionStoreError {
  return new SessionStoreError(status.CANCELLED, "the call was aborted by its AbortSignal", {
    cause: signal.reason,
  });
}
