import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SessionStoreError } from "../errors.js";

/** Trailing metadata of an ABORTED expected_seq mismatch: the session's length, in decimal. */
export const ACTUAL_LENGTH_KEY = "sessionstore-actual-length";

/** The gRPC status for an error: ours keep their code and message; anything else is INTERNAL. */
export function toServiceError(error: unknown, log: Logger): Partial<ServiceError> {
  if (error instanceof SessionStoreError) {
    const metadata = new Metadata();
    if (error.actualLength !== undefined) {
      metadata.set(ACTUAL_LENGTH_KEY, String(error.actualLength));
    }
    return { code: error.code as number as status, details: error.message, metadata };
  }
  log.error({ err: error }, "unexpected error");
  return { code: status.INTERNAL, details: "internal error; the server log has the details" };
}
