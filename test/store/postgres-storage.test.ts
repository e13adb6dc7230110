import pg from "pg";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code } from "../../src/errors.js";
import { parseSelector } from "../../src/labels.js";
import { migrate } from "../../src/store/postgres/migrations.js";
import { PostgresStorage } from "../../src/store/postgres/postgres-storage.js";
import { listStatement } from "../../src/store/postgres/session-listing.js";
import type { SessionChange } from "../../src/store/storage.js";
import { bytesOf, textsOf } from "../helpers/message-bytes.js";
import { resetSchema, testDatabases } from "../helpers/postgres.js";
import { type RootTenantStorage, rootTenantOf } from "../helpers/root-tenant.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import {
  appendOnce,
  describeStorageConformance,
  numberedMessages,
  readMessages,
} from "./conformance.js";

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
  await select(databaseUrl, text, values);
}

/** The rows a statement run as the superuser answers. */
async function select<Row extends pg.QueryResultRow>(
  databaseUrl: string,
  text: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
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

/** Rows of the tables that hold messages and pieces, as the database counts them. */
async function storedRows(databaseUrl: string): Promise<{ messages: number; pieces: number }> {
  const rows = await select<{ messages: string; pieces: string }>(
    databaseUrl,
    `SELECT (SELECT count(*) FROM sessionstore.messages) AS messages,
            (SELECT count(*) FROM sessionstore.pieces) AS pieces`,
  );
  return { messages: Number(rows[0]?.messages), pieces: Number(rows[0]?.pieces) };
}

describe("PostgresStorage on one database", skipWithReason(databases.missing), () => {
  let databaseUrl: string;
  /** Two backends on the same database, as two replicas are. */
  let a: RootTenantStorage;
  let b: RootTenantStorage;

  beforeEach(async () => {
    databaseUrl = await databases.create();
    a = rootTenantOf(newStorage(databaseUrl));
    b = rootTenantOf(newStorage(databaseUrl));
    await a.open();
    await b.open();
  });

  afterEach(async () => {
    await a?.close();
    await b?.close();
  });

  it("lets exactly one of two replicas racing label changes with one expected revision win", async () => {
    await appendOnce(a, "s", ["{}"]);
    for (let round = 0; round < 10; round++) {
      const outcomes = await Promise.allSettled([
        a.setLabels("s", { round: `a${round}` }, round),
        b.setLabels("s", { round: `b${round}` }, round),
      ]);
      const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
      expect(won).toHaveLength(1);
      const lost = outcomes.find((outcome) => outcome.status === "rejected");
      expect((lost as PromiseRejectedResult).reason.code).toBe(Code.Aborted);
      expect((await b.meta("s"))?.labelsRevision).toBe(round + 1);
    }
  });

  it("lets exactly one of a rewind and an append racing at one length on two replicas win", async () => {
    let length = 0;
    for (let round = 0; round < 10; round++) {
      await appendOnce(a, "s", numberedMessages(length, 3, `r${round}`), { expectedSeq: length });
      length += 3;
      const [rewound, appended] = await Promise.allSettled([
        a.rewind("s", length - 2, length),
        appendOnce(b, "s", ["{}"], { expectedSeq: length }),
      ]);
      expect([rewound.status, appended.status].sort()).toEqual(["fulfilled", "rejected"]);
      const lost = (rewound.status === "rejected" ? rewound : appended) as PromiseRejectedResult;
      expect(lost.reason.code).toBe(Code.Aborted);
      length = rewound.status === "fulfilled" ? length - 2 : length + 1;
      expect((await b.meta("s"))?.messageCount).toBe(length);
      expect(await readMessages(b, "s")).toHaveLength(length);
    }
  });

  it("tells a watcher on another replica where a session was rewound to", async () => {
    await appendOnce(a, "s", numberedMessages(0, 5));
    const heard: SessionChange[] = [];
    const stop = b.subscribe("s", (change) => heard.push(change));
    try {
      await a.rewind("s", 2);
      await expect.poll(() => heard).toContainEqual({ kind: "rewound", toSeq: 2 });
    } finally {
      stop();
    }
  });

  it("orders a rewind after the appends this replica took before it", async () => {
    const appended = [0, 1, 2].map((i) =>
      a.append("s", bytesOf(numberedMessages(i * 2, 2)), { sync: false, expectedSeq: i * 2 }),
    );
    const rewound = await a.rewind("s", 1, 6);
    expect(textsOf(rewound.dropped)).toEqual(numberedMessages(1, 5));
    await Promise.all(appended.map(async (appending) => (await appending).ack));
    expect(await readMessages(b, "s")).toEqual(numberedMessages(0, 1));
  });

  it("forks without copying rows, keeps shared rows through rewinds and deletes, and frees them with their last user", async () => {
    await appendOnce(a, "source", numberedMessages(0, 1000));
    await a.fork("source", 600, "fork", {});
    // Made on the other replica: a fork of the fork.
    await appendOnce(b, "fork", numberedMessages(600, 5, "f"));
    await b.fork("fork", 602, "grandchild", {});
    expect(await storedRows(databaseUrl)).toEqual({ messages: 1005, pieces: 3 });

    // The source's head is shared below 600: it goes on in a new segment; rows past 600 go.
    await a.rewind("source", 300);
    expect((await storedRows(databaseUrl)).messages).toBe(605);
    await appendOnce(a, "source", numberedMessages(300, 2, "s"));
    expect(await readMessages(b, "source")).toEqual([
      ...numberedMessages(0, 300),
      ...numberedMessages(300, 2, "s"),
    ]);
    const forked = [...numberedMessages(0, 600), ...numberedMessages(600, 5, "f")];
    expect(await readMessages(b, "fork")).toEqual(forked);

    await a.delete("source");
    expect((await storedRows(databaseUrl)).messages).toBe(605);
    expect(await readMessages(b, "fork")).toEqual(forked);
    await b.trim("fork", 100);
    expect(await readMessages(a, "grandchild")).toEqual(forked.slice(0, 602));
    await b.delete("fork");
    expect(await readMessages(a, "grandchild")).toEqual(forked.slice(0, 602));
    expect((await storedRows(databaseUrl)).messages).toBe(602);
    await a.delete("grandchild");
    expect(await storedRows(databaseUrl)).toEqual({ messages: 0, pieces: 0 });
  });

  it("leaks no row when replicas drop the last references to shared rows at once", async () => {
    for (let round = 0; round < 10; round++) {
      await appendOnce(a, "source", numberedMessages(0, 100));
      for (const at of [20, 40, 60, 80]) await a.fork("source", at, `fork-${at}`, {});
      // Each fork's delete races the source's rewind below it, on the other replica.
      await Promise.all([
        a.rewind("source", 10),
        ...[20, 40, 60, 80].map((at) => b.delete(`fork-${at}`)),
      ]);
      await b.delete("source");
      expect(await storedRows(databaseUrl)).toEqual({ messages: 0, pieces: 0 });
    }
  });

  it("deletes a guarded session only if the same statement finds it idle", async () => {
    await appendOnce(a, "s", ["{}"]);
    const { updatedAtMs } = (await a.meta("s")) as { updatedAtMs: number };
    expect(await b.delete("s", { updatedBeforeMs: updatedAtMs })).toBe(false);
    expect(await b.delete("s", { updatedBeforeMs: updatedAtMs + 1 })).toBe(true);
    expect(await storedRows(databaseUrl)).toEqual({ messages: 0, pieces: 0 });
  });

  it("lists by label newest first from the label index, not by reading every session", async () => {
    await a.close();
    await b.close();
    await sql(
      databaseUrl,
      `INSERT INTO sessionstore.sessions
         (session_id, tenant, length, durable_length, created_at_ms, updated_at_ms, agent_loop_version, labels)
       SELECT 'agent-' || lpad(g::text, 6, '0'), '', 1, 1, g, g, 'test',
         jsonb_build_object('user', CASE WHEN g % 2000 = 0 THEN 'alice' ELSE 'user-' || g END)
       FROM generate_series(1, 100000) g;
       ANALYZE sessionstore.sessions`,
    );
    a = rootTenantOf(newStorage(databaseUrl));
    b = rootTenantOf(newStorage(databaseUrl));
    await a.open();
    await b.open();
    const query = {
      prefix: "",
      selector: parseSelector("user=alice"),
      order: "updated-desc" as const,
      after: undefined,
      limit: 100,
    };
    const ids = (await a.list(query)).map((meta) => meta.sessionId);
    expect(ids).toEqual(
      Array.from({ length: 50 }, (_, i) => `agent-${String(100000 - i * 2000).padStart(6, "0")}`),
    );
    const { text, values } = listStatement("", query);
    const [plan] = await select<{ "QUERY PLAN": unknown }>(
      databaseUrl,
      `EXPLAIN (FORMAT JSON) ${text}`,
      values,
    );
    const described = JSON.stringify(plan?.["QUERY PLAN"]);
    expect(described).toContain("sessions_by_label");
    expect(described).not.toContain("Seq Scan");
  });
});

describe(
  "PostgresStorage on a database of schema version 1",
  skipWithReason(databases.missing),
  () => {
    it("migrates it with its sessions whole: no labels, nothing trimmed, and everything works on them", async () => {
      const databaseUrl = await databases.create();
      const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
      try {
        await migrate(pool, pino({ level: "silent" }), 1);
        // Appended as a server of version 1 did.
        await pool.query(
          "SELECT * FROM sessionstore.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
          [
            ["", ""],
            ["old", "older"],
            [null, null],
            [3, 1],
            [...numberedMessages(0, 3), "{}"],
            [null, null],
            [null, null],
            1000,
            "v1",
            true,
          ],
        );
      } finally {
        await pool.end();
      }
      const before = Date.now();
      const storage = rootTenantOf(newStorage(databaseUrl));
      await storage.open();
      try {
        expect(await storage.meta("old")).toMatchObject({
          messageCount: 3,
          createdAtMs: 1000,
          labels: {},
          labelsRevision: 0,
          parent: undefined,
          firstSeq: 0,
        });
        // Their append time is unknown: the migration's, so retention by age never takes them early.
        expect(await storage.firstSeqSince("old", before - 60_000)).toBe(0);
        await appendOnce(storage, "old", numberedMessages(3, 2), { expectedSeq: 3 });
        expect(await readMessages(storage, "old")).toEqual(numberedMessages(0, 5));
        await storage.setLabels("old", { user: "alice" });
        await storage.fork("old", 4, "new", { branch: "b" });
        await storage.rewind("old", 2);
        await storage.trim("new", 1);
        expect(await readMessages(storage, "new")).toEqual(numberedMessages(1, 3));
        expect(await readMessages(storage, "old")).toEqual(numberedMessages(0, 2));
        const listed = await storage.list({
          prefix: "",
          selector: parseSelector("user=alice"),
          order: "id",
          after: undefined,
          limit: 10,
        });
        expect(listed.map((meta) => [meta.sessionId, meta.labels])).toEqual([
          ["new", { branch: "b", user: "alice" }],
          ["old", { user: "alice" }],
        ]);
        await storage.delete("old");
        await storage.delete("older");
        await storage.delete("new");
        expect(await storedRows(databaseUrl)).toEqual({ messages: 0, pieces: 0 });
      } finally {
        await storage.close();
      }
    });
  },
);
