import { type ServiceError, status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SessionStoreError } from "../errors.js";

/** The gRPC status for an error: ours keep their code and message; anything else is INTERNAL. */
export function toServiceError(error: unknown, log: Logger): Partial<ServiceError> {
  if (error instanceof SessionStoreError)
    return { code: error.code as number as status, details: error.message };
  log.error({ err: error }, "unexpected error");
  return { code: status.INTERNAL, details: "internal error; the server log has the details" };
}
