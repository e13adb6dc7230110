import { type Logger, pino } from "pino";
import type { Config } from "./config.js";

export type { Logger };

/**
 * JSON lines on stdout, one per event; fields, not prose, carry the details. Each line carries
 * the pid: the process to signal, and the one to look for, when a wrapper (npm) started it.
 * `fieldsOfContext` adds fields from where each line is logged (with tracing: the trace id).
 */
export function createLogger(
  level: Config["logLevel"],
  destination: 1 | 2 = 1,
  fieldsOfContext?: () => object,
): Logger {
  return pino(
    {
      level,
      base: { service: "sessionstore", pid: process.pid },
      ...(fieldsOfContext ? { mixin: fieldsOfContext } : {}),
    },
    destination === 1 ? undefined : pino.destination(2),
  );
}
