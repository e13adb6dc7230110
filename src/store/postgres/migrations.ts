import type { Pool, PoolClient } from "pg";
import type { Logger } from "pino";
import { LABELS_FORKS_TRIMS } from "./migration-2.js";

/**
 * The schema, as versioned migrations applied in order, each once. Every table is keyed by
 * session id first, and every unique key includes it, so the schema distributes by session id
 * unchanged (Citus: `SELECT create_distributed_table('sessionstore.messages', 'session_id')`);
 * a message's session id is the session that wrote it, so a fork reads its source's rows
 * (version 2) across shards.
 * Messages are `text`, not `jsonb`: jsonb reorders keys and loses digits; they are stored byte
 * for byte.
 */
export const MIGRATIONS: readonly { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "sessions, messages and the batched append",
    sql: `
CREATE TABLE sessionstore.sessions (
  session_id text COLLATE "C" NOT NULL,
  tenant text COLLATE "C" NOT NULL DEFAULT '',
  length bigint NOT NULL,
  durable_length bigint NOT NULL,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  agent_loop_version text NOT NULL,
  PRIMARY KEY (session_id, tenant)
);
CREATE INDEX sessions_by_tenant ON sessionstore.sessions (tenant, session_id);

CREATE TABLE sessionstore.messages (
  session_id text COLLATE "C" NOT NULL,
  tenant text COLLATE "C" NOT NULL DEFAULT '',
  seq bigint NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (session_id, tenant, seq)
);

-- Appends a batch of requests in order, in the caller's transaction. For each request: its
-- first and next seq, and 'ok', 'aborted' (expected_seq is not the length and it is not a
-- resend: actual holds the length) or 'chain' (an earlier request of its chain in this batch
-- failed, so it stores nothing). A request with messages at expected_seq 0 or none creates its
-- session. A resend (its first messages equal those stored from expected_seq) stores only the
-- rest. Each session that got messages is announced on the 'sessionstore' channel at commit.
CREATE FUNCTION sessionstore.append_batch(
  tenants text[], ids text[], expected bigint[], counts int[], bodies text[], chains int[],
  created bigint[], now_ms bigint, version text, durable boolean)
RETURNS TABLE (first_seq bigint, next_seq bigint, outcome text, actual bigint, durable_count bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  i int;
  n int;
  base int := 0;
  len bigint;
  exp bigint;
  overlap int;
  stored text[];
  failed int[] := '{}';
  added int;
BEGIN
  -- The transaction's commit waits for its WAL to reach disk only when a request wants that.
  PERFORM set_config('synchronous_commit', CASE WHEN durable THEN 'on' ELSE 'off' END, true);
  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
    n := counts[i];
    exp := expected[i];
    first_seq := 0; next_seq := 0; actual := 0; outcome := 'ok'; added := 0; durable_count := 0;
    IF chains[i] IS NOT NULL AND chains[i] = ANY(failed) THEN
      outcome := 'chain';
    ELSE
      SELECT s.length INTO len FROM sessionstore.sessions s
        WHERE s.session_id = ids[i] AND s.tenant = tenants[i] FOR UPDATE;
      IF NOT FOUND AND n > 0 AND coalesce(exp, 0) = 0 THEN
        INSERT INTO sessionstore.sessions AS s
          (session_id, tenant, length, durable_length, created_at_ms, updated_at_ms, agent_loop_version)
          VALUES (ids[i], tenants[i], 0, 0, coalesce(created[i], now_ms), now_ms, version)
          ON CONFLICT DO NOTHING;
        SELECT s.length INTO len FROM sessionstore.sessions s
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i] FOR UPDATE;
      END IF;
      len := coalesce(len, 0);
      IF exp IS NULL OR exp = len THEN
        first_seq := len; next_seq := len + n; added := n;
      ELSIF exp > len OR n = 0 THEN
        outcome := 'aborted'; actual := len;
      ELSE
        overlap := least(n, len - exp);
        SELECT array_agg(m.body ORDER BY m.seq) INTO stored FROM sessionstore.messages m
          WHERE m.session_id = ids[i] AND m.tenant = tenants[i] AND m.seq >= exp AND m.seq < exp + overlap;
        IF stored IS NOT DISTINCT FROM bodies[base + 1 : base + overlap] THEN
          first_seq := exp; next_seq := exp + n; added := n - overlap;
          base := base + overlap;
          n := n - overlap;
        ELSE
          outcome := 'aborted'; actual := len;
        END IF;
      END IF;
      IF added > 0 THEN
        INSERT INTO sessionstore.messages (session_id, tenant, seq, body)
          SELECT ids[i], tenants[i], len + k - 1, bodies[base + k] FROM generate_series(1, added) AS k;
        UPDATE sessionstore.sessions s SET length = len + added, updated_at_ms = now_ms,
            durable_length = CASE WHEN durable THEN len + added ELSE s.durable_length END
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i];
        PERFORM pg_notify('sessionstore', json_build_object('k', 'a', 't', tenants[i], 's', ids[i])::text);
      ELSIF durable AND outcome = 'ok' THEN
        UPDATE sessionstore.sessions s SET durable_length = s.length
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i] AND s.durable_length < s.length;
      END IF;
      IF outcome = 'ok' THEN
        SELECT s.durable_length INTO durable_count FROM sessionstore.sessions s
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i];
        durable_count := coalesce(durable_count, 0);
      END IF;
      IF outcome <> 'ok' AND chains[i] IS NOT NULL THEN
        failed := failed || chains[i];
      END IF;
    END IF;
    base := base + n;
    RETURN NEXT;
  END LOOP;
END
$fn$;
`,
  },
  LABELS_FORKS_TRIMS,
];

/** The newest schema version this server knows. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((migration) => migration.version));

/** Any 64-bit key, the same for every replica: the advisory lock that serializes migrations. */
const MIGRATION_LOCK = 0x5e551057;

/**
 * Brings the schema to `target` (SCHEMA_VERSION: the current one; an older one makes a database
 * as an older server left it) under an advisory lock, so replicas starting together migrate
 * once. Refuses a schema newer than this server knows. Resolves to the migrations applied.
 */
export async function migrate(pool: Pool, log: Logger, target = SCHEMA_VERSION): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      return await applyMissing(client, log, target);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}

async function applyMissing(client: PoolClient, log: Logger, target: number): Promise<number[]> {
  await client.query("CREATE SCHEMA IF NOT EXISTS sessionstore");
  await client.query(
    `CREATE TABLE IF NOT EXISTS sessionstore.migrations (
       version int PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  const { rows } = await client.query<{ version: number | null }>(
    "SELECT max(version) AS version FROM sessionstore.migrations",
  );
  const current = rows[0]?.version ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `the database's sessionstore schema is version ${current}, newer than this server knows (${SCHEMA_VERSION}); ` +
        "run a newer sessionstore",
    );
  }
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    if (migration.version <= current || migration.version > target) continue;
    await client.query("BEGIN");
    try {
      await client.query(migration.sql);
      await client.query(
        "INSERT INTO sessionstore.migrations (version, description) VALUES ($1, $2)",
        [migration.version, migration.description],
      );
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK");
      throw error;
    }
    log.info(
      { version: migration.version, description: migration.description },
      "applied a schema migration",
    );
    applied.push(migration.version);
  }
  return applied;
}
