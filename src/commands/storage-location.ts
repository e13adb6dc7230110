import type { Logger } from "pino";
import { type Config, loadConfig } from "../config.js";
import { createStorage } from "../store/create-storage.js";
import type { StorageBackend } from "../store/storage.js";

/** Whether `location` names a PostgreSQL database (a libpq URL) rather than a data directory. */
export function isDatabaseUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/**
 * The storage at `location`, a data directory or a PostgreSQL URL, with the server's default
 * settings (and `overrides`), not yet opened. A data directory is opened as the server opens it:
 * with its lock, so no server may run on it meanwhile.
 */
export function storageAt(
  location: string,
  log: Logger,
  overrides: Partial<Config> = {},
): Promise<StorageBackend> {
  const config: Config = {
    ...loadConfig([], {}),
    ...(isDatabaseUrl(location)
      ? { storage: "postgres", databaseUrl: location }
      : { storage: "jsonl", dataDir: location }),
    ...overrides,
  };
  return createStorage(config, log);
}
