import { type Logger, pino } from "pino";
import type { Config } from "./config.js";

export type { Logger };

/**
 * JSON lines on stdout, one per event; fields, not prose, carry the details. Each line carries
 * the pid: the process to signal, and the one to look for, when a wrapper (npm) started it.
 */
export function createLogger(level: Config["logLevel"], destination: 1 | 2 = 1): Logger {
  return pino(
    { level, base: { service: "sessionstore", pid: process.pid } },
    destination === 1 ? undefined : pino.destination(2),
  );
}
