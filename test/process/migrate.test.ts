import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { testDatabases } from "../helpers/postgres.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";

const databases = testDatabases();
const CLI = join(REPOSITORY, "dist/src/cli.js");

describe("sessionstore migrate", skipWithReason(databases.missing), () => {
  it("applies the schema once, says when it is current, and refuses a schema newer than it knows", async () => {
    const url = await databases.create();
    const first = await run(process.execPath, [CLI, "migrate", "--database-url", url]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.toString()).toBe("applied migrations 1, 2\n");
    const second = await run(process.execPath, [CLI, "migrate", "--database-url", url]);
    expect(second.stdout.toString()).toBe("the schema is up to date\n");

    // Replicas starting together migrate once: the advisory lock serializes them.
    const fresh = await databases.create();
    const racing = await Promise.all(
      [0, 1, 2].map(() => run(process.execPath, [CLI, "migrate", "--database-url", fresh])),
    );
    expect(racing.map((result) => result.code)).toEqual([0, 0, 0]);
    expect(racing.filter((result) => result.stdout.toString().startsWith("applied")).length).toBe(
      1,
    );

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(
      "INSERT INTO sessionstore.migrations (version, description) VALUES (99, 'future')",
    );
    await client.end();
    const newer = await run(process.execPath, [
      CLI,
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--storage",
      "postgres",
      "--database-url",
      url,
    ]);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toMatch(/schema is version 99, newer than this server knows \(2\)/);
  }, 60_000);
});
