import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeManySessions, writeSessionFile } from "../../bench/datasets.js";
import { readFsyncTrace } from "../../bench/fsyncs.js";
import { MESSAGE_BYTES, makePayloads } from "../../bench/payloads.js";
import { median, percentile } from "../../bench/stats.js";
import { listByIdQuery } from "../../src/store/storage.js";
import { makeTempDir } from "../helpers/test-server.js";
import { readMessages } from "../store/conformance.js";
import { newStorage } from "../store/jsonl-support.js";

/** The bench's own pieces whose mistakes would not show as a failure, only as wrong figures. */
describe("bench harness", () => {
  let directory: string | undefined;
  afterEach(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("generates session files the server opens as its own layout, without rewriting them", async () => {
    directory = await makeTempDir("bench-datasets-");
    const payloads = makePayloads(7);
    writeSessionFile(directory, "long", 25, payloads);
    writeManySessions(directory, "agent-", 12, 3, payloads);
    const before = await readFile(join(directory, "long.jsonl"));

    const storage = newStorage(directory, { maxOpenFiles: 8 });
    await storage.open();
    expect((await storage.meta("long"))?.messageCount).toBe(25);
    const stored = await readMessages(storage, "long");
    expect(stored).toEqual(Array.from({ length: 25 }, (_, seq) => payloads[seq % 7]));
    const listed = await storage.list(listByIdQuery("agent-", "", 100));
    expect(listed.map((meta) => [meta.sessionId, meta.messageCount])).toEqual(
      Array.from({ length: 12 }, (_, index) => [`agent-${String(index).padStart(2, "0")}`, 3]),
    );
    await storage.close();
    // Not recounted, repaired or rewritten on open: the bench measures the files as generated.
    expect(await readFile(join(directory, "long.jsonl"))).toEqual(before);
  });

  it("makes distinct JSON-object messages of the stated size", () => {
    const payloads = makePayloads(50);
    expect(new Set(payloads).size).toBe(50);
    for (const payload of payloads) {
      expect(Buffer.byteLength(payload, "utf8")).toBe(MESSAGE_BYTES);
      expect(typeof JSON.parse(payload)).toBe("object");
    }
  });

  it("counts each fsync of an strace log once, also when another thread interrupted it", async () => {
    directory = await makeTempDir("bench-strace-");
    const log = join(directory, "trace");
    await writeFile(
      log,
      [
        "101 1700000000.100000 fdatasync(21 <unfinished ...>",
        "102 1700000000.100500 fdatasync(22)   = 0",
        "101 1700000000.103000 <... fdatasync resumed>) = 0",
        "101 1700000000.200000 fsync(9)        = 0",
        "",
      ].join("\n"),
    );
    const calls = await readFsyncTrace(log);
    expect(calls.map((call) => call.call)).toEqual(["fdatasync", "fdatasync", "fsync"]);
    expect(calls[0]?.epochMs).toBeCloseTo(1_700_000_000_100, 0);
  });

  it("takes medians and nearest-rank percentiles", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const hundred = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
  });
});
