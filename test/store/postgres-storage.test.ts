import pg from "pg";
import { pino } from "pino";
import { describe } from "vitest";
import { PostgresStorage } from "../../src/store/postgres/postgres-storage.js";
import { resetSchema, testDatabases } from "../helpers/postgres.js";
import { rootTenantOf } from "../helpers/root-tenant.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { describeStorageConformance } from "./conformance.js";

const databases = testDatabases();

function newStorage(databaseUrl: string): PostgresStorage {
  return new PostgresStorage({
    databaseUrl,
    poolSize: 4,
    timeoutMs: 5000,
    flushIntervalMs: 200,
    maxBufferBytes: 64 << 20,
    log: pino({ level: "silent" }),
  });
}

/** Runs statements as the superuser, behind the backend's back. */
async function sql(databaseUrl: string, text: string, values: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

describe("PostgresStorage", skipWithReason(databases.missing), () => {
  let url: Promise<string> | undefined;
  describeStorageConformance("PostgresStorage", async () => {
    url ??= databases.create();
    const databaseUrl = await url;
    await resetSchema(databaseUrl);
    return {
      storage: rootTenantOf(newStorage(databaseUrl)),
      reopen: async () => rootTenantOf(newStorage(databaseUrl)),
      // A database that refuses writes for real: a trigger raising an error on large messages,
      // as a full disk refuses the writes that need room.
      writeFaults: {
        failWrites: () =>
          sql(
            databaseUrl,
            `CREATE FUNCTION sessionstore.refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'no room' USING ERRCODE = '53100'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON sessionstore.messages FOR EACH ROW
               WHEN (octet_length(NEW.body) > 60000) EXECUTE FUNCTION sessionstore.refuse()`,
          ),
        restoreWrites: () =>
          sql(
            databaseUrl,
            `DROP TRIGGER IF EXISTS refuse ON sessionstore.messages;
             DROP FUNCTION IF EXISTS sessionstore.refuse()`,
          ),
      },
      // A stored message lost (a row deleted behind the server's back).
      damage: (sessionId, seq) =>
        sql(databaseUrl, "DELETE FROM sessionstore.messages WHERE session_id = $1 AND seq = $2", [
          sessionId,
          seq,
        ]),
      cleanup: async () => {},
    };
  });
});
