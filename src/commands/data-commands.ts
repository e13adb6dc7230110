import { parseArgs } from "node:util";
import { ConfigError } from "../config.js";
import { createLogger } from "../logger.js";
import { PostgresStorage } from "../store/postgres/postgres-storage.js";
import { describeSummary, runCopy } from "./copy.js";
import { isDatabaseUrl, storageAt } from "./storage-location.js";

export const COPY_USAGE = `Usage: sessionstore copy --from <data-dir | postgres-url> --to <data-dir | postgres-url>

Copies every session, byte for byte and with its creation time, between data directories
(motosan's included) and PostgreSQL databases. Run it again after an interruption: it resumes,
and never stores a message twice. A data directory is opened as the server opens it (no server
may run on it meanwhile). Progress on a terminal; a summary at the end.

Examples:
  sessionstore copy --from ./data --to postgresql://app@db:5432/sessions
  sessionstore copy --from postgresql://app@db/sessions --to /backups/sessions
`;

export const MIGRATE_USAGE = `Usage: sessionstore migrate --database-url <postgres-url>

Brings the database's sessionstore schema up to date (servers also do it when they start, under
an advisory lock, so replicas starting together migrate once). Refuses a schema newer than this
version knows.
`;

/** `sessionstore copy`: resolves to the process's exit code. */
export async function copyCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { from: { type: "string" }, to: { type: "string" } }, COPY_USAGE);
  if (values.help) return help(COPY_USAGE);
  const from = values.from;
  const to = values.to;
  if (typeof from !== "string" || typeof to !== "string") {
    throw new ConfigError(`copy needs --from and --to\n\n${COPY_USAGE}`);
  }
  if (from === to) throw new ConfigError("--from and --to name the same place");
  const log = createLogger("warn", 2);
  const summary = await runCopy(
    { source: await storageAt(from, log), target: await storageAt(to, log) },
    log,
  );
  process.stdout.write(describeSummary(summary));
  return summary.conflicts.length > 0 ? 1 : 0;
}

/** `sessionstore migrate`: resolves to the process's exit code. */
export async function migrateCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { "database-url": { type: "string" } }, MIGRATE_USAGE);
  if (values.help) return help(MIGRATE_USAGE);
  const url = values["database-url"] ?? process.env.SESSIONSTORE_DATABASE_URL;
  if (typeof url !== "string" || !isDatabaseUrl(url)) {
    throw new ConfigError(`migrate needs --database-url postgresql://...\n\n${MIGRATE_USAGE}`);
  }
  const log = createLogger("info", 2);
  const applied = await PostgresStorage.migrate(url, log);
  process.stdout.write(
    applied.length === 0
      ? "the schema is up to date\n"
      : `applied migrations ${applied.join(", ")}\n`,
  );
  return 0;
}

function parse<T extends Record<string, { type: "string" }>>(
  args: string[],
  options: T,
  usage: string,
) {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: "boolean" as const } },
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${usage}`);
  }
}

function help(usage: string): number {
  process.stdout.write(usage);
  return 0;
}
