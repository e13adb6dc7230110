import type { Logger } from "pino";
import type { Config } from "../config.js";
import { JOURNAL_DEFAULTS } from "./jsonl/journal.js";
import { JsonlFileStorage } from "./jsonl/jsonl-storage.js";
import { MemoryStorage } from "./memory/memory-storage.js";
import type { StorageBackend } from "./storage.js";
import type { StorageEvents } from "./storage-events.js";

/**
 * The backend `config.storage` names, built from its settings (not yet opened), telling `events`
 * of its work. The PostgreSQL driver is loaded only for that backend: the embedded default
 * starts without it.
 */
export async function createStorage(
  config: Config,
  log: Logger,
  events?: StorageEvents,
): Promise<StorageBackend> {
  switch (config.storage) {
    case "memory":
      return new MemoryStorage();
    case "postgres": {
      const { PostgresStorage } = await import("./postgres/postgres-storage.js");
      return new PostgresStorage({
        databaseUrl: config.databaseUrl,
        poolSize: config.databasePoolSize,
        timeoutMs: config.databaseTimeoutMs,
        flushIntervalMs: config.flushIntervalMs,
        maxBufferBytes: config.maxBufferBytes,
        log,
        events,
      });
    }
    case "jsonl":
      return new JsonlFileStorage({
        directory: config.dataDir,
        maxOpenFiles: config.maxOpenFiles,
        journal: { ...JOURNAL_DEFAULTS, segmentBytes: config.journalSegmentBytes },
        flushMessages: config.flushMessages,
        flushIntervalMs: config.flushIntervalMs,
        maxSessionBufferBytes: config.maxSessionBufferBytes,
        maxBufferBytes: config.maxBufferBytes,
        log,
        events,
      });
  }
}
