import pino from "pino";
import { describe, expect, it } from "vitest";
import { type RetentionPolicy, RetentionSweeper } from "../../src/sessions/retention.js";
import { MemoryStorage } from "../../src/store/memory/memory-storage.js";
import { appendOnce, numberedMessages, readMessages } from "../store/conformance.js";

const OFF: RetentionPolicy = {
  retentionMaxMessages: 0,
  retentionMaxAgeMs: 0,
  sessionIdleTtlMs: 0,
  retentionSweepIntervalMs: 60_000,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sweepWith(backend: MemoryStorage, policy: Partial<RetentionPolicy>) {
  const sweeper = new RetentionSweeper(backend, { ...OFF, ...policy }, pino({ level: "silent" }));
  return sweeper.sweep();
}

describe("the retention sweeper", () => {
  it("trims every tenant's sessions to the newest messages, keeping seqs", async () => {
    const backend = new MemoryStorage();
    const root = backend.tenant("");
    const other = backend.tenant("acme");
    await appendOnce(root, "long", numberedMessages(0, 10));
    await appendOnce(root, "short", numberedMessages(0, 2));
    await appendOnce(other, "long", numberedMessages(0, 5));
    const report = await sweepWith(backend, { retentionMaxMessages: 3 });
    expect(report).toMatchObject({ sessions: 3, trimmed: 9, deleted: 0, failures: 0 });
    expect(await readMessages(root, "long")).toStrictEqual(numberedMessages(7, 3));
    expect((await root.meta("long"))?.firstSeq).toBe(7);
    expect(await readMessages(root, "short")).toStrictEqual(numberedMessages(0, 2));
    expect(await readMessages(other, "long")).toStrictEqual(numberedMessages(2, 3));
    expect((await sweepWith(backend, { retentionMaxMessages: 3 })).trimmed).toBe(0);
  });

  it("trims messages older than the age, and deletes sessions idle past the TTL", async () => {
    const backend = new MemoryStorage();
    const root = backend.tenant("");
    await appendOnce(root, "idle", numberedMessages(0, 2));
    await appendOnce(root, "mixed", numberedMessages(0, 3));
    await sleep(60);
    await appendOnce(root, "mixed", numberedMessages(3, 2));
    const aged = await sweepWith(backend, { retentionMaxAgeMs: 40 });
    expect(aged.trimmed).toBe(5);
    expect(await readMessages(root, "mixed")).toStrictEqual(numberedMessages(3, 2));
    expect((await root.meta("idle"))?.messageCount).toBe(2);

    const idle = await sweepWith(backend, { sessionIdleTtlMs: 40 });
    expect(idle).toMatchObject({ deleted: 1 });
    expect(await root.meta("idle")).toBeUndefined();
    expect(await root.meta("mixed")).toBeDefined();
  });

  it("does nothing when every rule is off, and stops a started sweeper", async () => {
    const backend = new MemoryStorage();
    await appendOnce(backend.tenant(""), "s", numberedMessages(0, 3));
    const sweeper = new RetentionSweeper(
      backend,
      { ...OFF, retentionMaxMessages: 1, retentionSweepIntervalMs: 100 },
      pino({ level: "silent" }),
    );
    sweeper.start();
    await expect.poll(async () => (await backend.tenant("").meta("s"))?.firstSeq).toBe(2);
    await sweeper.stop();
    expect(await sweepWith(backend, {})).toMatchObject({ trimmed: 0, deleted: 0 });
  });
});
