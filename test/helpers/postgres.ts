import pg from "pg";
import { inject } from "vitest";

export {
  type PostgresCluster,
  postgresBinaries,
  startPostgresCluster,
} from "./postgres-cluster.js";

let databases = 0;

/**
 * A new, empty database in the test run's shared cluster (see test/global-setup.ts), or the
 * reason there is none, for `skipWithReason`. Call at a file's top level (it reads what the
 * global setup provided).
 */
export function testDatabases(): { missing?: string; create(): Promise<string> } {
  const provided = inject("postgres");
  if ("missing" in provided) {
    return { missing: provided.missing, create: () => Promise.reject(new Error(provided.missing)) };
  }
  return {
    async create() {
      const name = `test_${process.pid}_${Date.now()}_${databases++}`;
      const admin = new pg.Client({ connectionString: provided.url });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return provided.url.replace(/\/postgres$/, `/${name}`);
    },
  };
}

/** Drops the sessionstore schema of a database, so the next open starts from an empty one. */
export async function resetSchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("DROP SCHEMA IF EXISTS sessionstore CASCADE");
  } finally {
    await client.end();
  }
}
