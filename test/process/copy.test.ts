import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type CopyProgress, copySessions } from "../../src/commands/copy.js";
import { storageAt } from "../../src/commands/storage-location.js";
import { listByIdQuery, type SessionStorage } from "../../src/store/storage.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { testDatabases } from "../helpers/postgres.js";
import { REPOSITORY } from "../helpers/repository.js";
import { type RootTenantStorage, rootTenantOf } from "../helpers/root-tenant.js";
import { run } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { makeTempDir } from "../helpers/test-server.js";
import { appendOnce, numberedMessages, readMessages } from "../store/conformance.js";

const databases = testDatabases();
const CLI = join(REPOSITORY, "dist/src/cli.js");
const quiet: CopyProgress = { start() {}, update() {}, stop() {} };

/** Every session of a storage: id, creation time and messages. */
async function contents(storage: SessionStorage) {
  const sessions: { id: string; createdAtMs: number; messages: string[] }[] = [];
  for (const meta of await storage.list(listByIdQuery("", "", 1000))) {
    sessions.push({
      id: meta.sessionId,
      createdAtMs: meta.createdAtMs,
      messages: await readMessages(storage, meta.sessionId),
    });
  }
  return sessions;
}

async function motosanDirectory(): Promise<string> {
  const directory = await makeTempDir("copy-motosan-");
  for (const name of await readdir(MOTOSAN_FIXTURES)) {
    if (!name.endsWith(".jsonl")) continue;
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(directory, name), await readFile(join(MOTOSAN_FIXTURES, name)));
  }
  return directory;
}

describe("sessionstore copy", skipWithReason(databases.missing), () => {
  const opened: RootTenantStorage[] = [];
  afterEach(async () => {
    for (const storage of opened.splice(0).reverse()) await storage.close().catch(() => undefined);
  });
  async function open(location: string): Promise<RootTenantStorage> {
    const storage = rootTenantOf(await storageAt(location, pino({ level: "silent" })));
    await storage.open();
    opened.push(storage);
    return storage;
  }

  it("round-trips a motosan directory through PostgreSQL byte for byte, as the CLI runs it", async () => {
    const source = await motosanDirectory();
    const database = await databases.create();
    const back = await makeTempDir("copy-back-");

    const there = await run(process.execPath, [CLI, "copy", "--from", source, "--to", database]);
    expect(there.code, there.stderr).toBe(0);
    expect(there.stdout.toString()).toMatch(
      /^copied 5 sessions in [\d.]+ s: 12 messages copied, 0 already there\n1 sessions hold no message and were not created in the target: empty\n$/,
    );
    const again = await run(process.execPath, [CLI, "copy", "--from", source, "--to", database]);
    expect(again.stdout.toString()).toMatch(/: 0 messages copied, 12 already there\n/);
    const home = await run(process.execPath, [CLI, "copy", "--from", database, "--to", back]);
    expect(home.code, home.stderr).toBe(0);

    const original = (await contents(await open(source))).filter((s) => s.messages.length > 0);
    expect(original.map((session) => session.messages.length)).toEqual([5, 2, 2, 3]);
    expect(await contents(await open(database))).toEqual(original);
    expect(await contents(await open(back))).toEqual(original);
  }, 60_000);

  it("resumes an interrupted copy without storing anything twice, and reports a target that differs", async () => {
    const source = await open(await makeTempDir("copy-source-"));
    for (let i = 0; i < 6; i++) {
      await appendOnce(source, `s${i}`, numberedMessages(0, 30 + i, `s${i}`), { sync: true });
    }
    const target = await open(await databases.create());
    // What an interruption leaves: some sessions whole, one only begun.
    let seen = 0;
    const interrupting: CopyProgress = {
      ...quiet,
      update(sessions) {
        seen = sessions;
        if (sessions === 3) throw new Error("interrupted");
      },
    };
    await expect(copySessions(source, target, interrupting)).rejects.toThrow("interrupted");
    expect(seen).toBe(3);
    await appendOnce(target, "s3", numberedMessages(0, 10, "s3"));
    // A session the target holds differently is not overwritten.
    await appendOnce(target, "s5", ['{"other":true}']);

    const summary = await copySessions(source, target, quiet);
    expect(summary.conflicts).toEqual(["s5"]);
    expect(summary.present).toBe(30 + 31 + 32 + 10);
    const copied = await contents(target);
    for (let i = 0; i < 5; i++) {
      expect(copied[i]?.messages).toEqual(numberedMessages(0, 30 + i, `s${i}`));
    }
    expect(copied[5]?.messages).toEqual(['{"other":true}']);
  }, 60_000);

  it("copies every tenant's sessions to the same tenant, files to PostgreSQL and back", async () => {
    const source = await open(await makeTempDir("copy-tenants-"));
    await appendOnce(source, "shared-id", ['{"owner":"none"}']);
    await appendOnce(source.tenant("acme"), "shared-id", ['{"owner":"acme"}'], { sync: true });
    await appendOnce(source.tenant("globex"), "only-globex", numberedMessages(0, 3), {
      sync: true,
    });
    const database = await open(await databases.create());
    const summary = await copySessions(source, database, quiet);
    expect(summary).toMatchObject({ sessions: 3, copied: 5, conflicts: [] });

    const back = await open(await makeTempDir("copy-tenants-back-"));
    await copySessions(database, back, quiet);
    for (const storage of [database, back]) {
      expect(await storage.tenants()).toEqual(["", "acme", "globex"]);
      expect(await readMessages(storage, "shared-id")).toEqual(['{"owner":"none"}']);
      expect(await readMessages(storage.tenant("acme"), "shared-id")).toEqual(['{"owner":"acme"}']);
      expect(await contents(storage.tenant("globex"))).toMatchObject([
        { id: "only-globex", messages: numberedMessages(0, 3) },
      ]);
      expect(await storage.tenant("acme").meta("only-globex")).toBeUndefined();
    }
  }, 60_000);

  it("keeps a trimmed session's seqs and every session's labels, and makes a fork whole", async () => {
    const source = await open(await makeTempDir("copy-lineage-"));
    await appendOnce(source, "trimmed", numberedMessages(0, 6), {
      sync: true,
      labels: { user: "alice" },
    });
    await source.trim("trimmed", 4);
    await source.fork("trimmed", 5, "forked", { attempt: "2" });
    const database = await open(await databases.create());
    const summary = await copySessions(source, database, quiet);
    expect(summary).toMatchObject({ sessions: 2, copied: 3, conflicts: [] });
    const back = await open(await makeTempDir("copy-lineage-back-"));
    await copySessions(database, back, quiet);
    for (const storage of [database, back]) {
      expect(await storage.meta("trimmed")).toMatchObject({
        firstSeq: 4,
        messageCount: 6,
        labels: { user: "alice" },
      });
      expect(await readMessages(storage, "trimmed", { fromSeq: 4 })).toEqual(
        numberedMessages(4, 2),
      );
      expect(await storage.meta("forked")).toMatchObject({
        firstSeq: 4,
        messageCount: 5,
        labels: { attempt: "2", user: "alice" },
      });
      expect(await readMessages(storage, "forked")).toEqual(numberedMessages(4, 1));
    }
    expect((await copySessions(source, database, quiet)).present).toBe(3);
  }, 60_000);
});
