import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SessionStoreError } from "../errors.js";

/** Trailing metadata of an ABORTED expected_seq mismatch: the session's length, in decimal. */
export const ACTUAL_LENGTH_KEY = "sessionstore-actual-length";
/** Trailing metadata of an ABORTED expected_labels_revision mismatch: the actual revision. */
export const ACTUAL_LABELS_REVISION_KEY = "sessionstore-actual-labels-revision";
/** Trailing metadata of OUT_OF_RANGE below a trimmed session's start: its first kept seq. */
export const FIRST_SEQ_KEY = "sessionstore-first-seq";

/** The gRPC status for an error: ours keep their code and message; anything else is INTERNAL. */
export function toServiceError(error: unknown, log: Logger): Partial<ServiceError> {
  if (error instanceof SessionStoreError) {
    const metadata = new Metadata();
    if (error.actualLength !== undefined) {
      metadata.set(ACTUAL_LENGTH_KEY, String(error.actualLength));
    }
    if (error.actualLabelsRevision !== undefined) {
      metadata.set(ACTUAL_LABELS_REVISION_KEY, String(error.actualLabelsRevision));
    }
    if (error.firstSeq !== undefined) metadata.set(FIRST_SEQ_KEY, String(error.firstSeq));
    return { code: error.code as number as status, details: error.message, metadata };
  }
  log.error({ err: error }, "unexpected error");
  return { code: status.INTERNAL, details: "internal error; the server log has the details" };
}
