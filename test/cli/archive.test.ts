import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFile, cp, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { CLI, sessionstore } from "../helpers/operator-cli.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { Terminal, tmuxMissing } from "../helpers/terminal.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

/** The files of a directory (hidden ones included) and their bytes. */
async function filesOf(directory: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(directory)).sort()) {
    files.set(name, await readFile(join(directory, name)));
  }
  return files;
}

/** Digests of files' bytes: comparing them is quick where a deep equality of megabytes is not. */
const digests = (files: Map<string, Buffer>) =>
  [...files].map(([name, bytes]) => [name, createHash("sha256").update(bytes).digest("hex")]);
const digest = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/** A motosan file without its header line: the messages, byte for byte. */
const body = (file: Buffer | undefined) => file?.subarray(file.indexOf(10) + 1);

describe("sessionstore export and import", { timeout: 120_000 }, () => {
  const work: string[] = [];
  const servers: ChildServer[] = [];
  const start = async (args: string[] = []) => {
    const dataDir = await makeTempDir();
    work.push(dataDir);
    const server = await startChildServer(["--data-dir", dataDir, ...args]);
    servers.push(server);
    return { server, dataDir };
  };
  const temp = async () => {
    const directory = await makeTempDir();
    work.push(directory);
    return directory;
  };
  let source: ChildServer;

  beforeAll(async () => {
    // A server on a copy of motosan's files.
    const dataDir = await temp();
    await cp(MOTOSAN_FIXTURES, dataDir, { recursive: true });
    await rm(join(dataDir, "README.md"));
    source = await startChildServer(["--data-dir", dataDir]);
    servers.push(source);
  });
  afterAll(async () => {
    for (const server of servers) {
      server.client.close();
      server.process.kill("SIGTERM");
      await server.exited;
    }
    for (const directory of work) await rm(directory, { recursive: true, force: true });
  });

  it("exports motosan's files as they were, imports them into another server, and exports them again byte for byte", async () => {
    const out = join(await temp(), "backup");
    const exported = await sessionstore(source.address, ["export", out, "--json"]);
    expect(exported.code).toBe(0);
    expect(exported.json()).toMatchObject({ sessions: 5, messages: 12, skipped: 0 });
    const files = await filesOf(out);
    expect([...files.keys()]).toEqual([
      "agent-7f3a.jsonl",
      "empty.jsonl",
      "no-header.jsonl",
      "precise.jsonl",
      "torn-1.jsonl",
    ]);
    // Intact motosan files come out as they went in, header included.
    for (const name of ["agent-7f3a.jsonl", "precise.jsonl", "empty.jsonl"]) {
      expect(files.get(name), name).toEqual(await readFile(join(MOTOSAN_FIXTURES, name)));
    }
    // The torn record is not a message: the export holds the three whole ones.
    expect(body(files.get("torn-1.jsonl"))?.toString().split("\n")).toHaveLength(4);

    const { server: target } = await start();
    const imported = await sessionstore(target.address, ["import", out, "--json"]);
    expect(imported.code).toBe(0);
    expect(imported.json()).toMatchObject({
      sessions: 5,
      appended: 12,
      present: 0,
      conflicts: [],
      empty: ["empty"],
    });
    for (const id of ["agent-7f3a", "precise", "no-header", "torn-1"]) {
      expect((await loadAll(target.client, id)).messages).toEqual(
        (await loadAll(source.client, id)).messages,
      );
    }
    const again = join(await temp(), "again");
    expect((await sessionstore(target.address, ["export", again])).code).toBe(0);
    const twice = await filesOf(again);
    for (const name of ["agent-7f3a.jsonl", "no-header.jsonl", "precise.jsonl", "torn-1.jsonl"]) {
      expect(body(twice.get(name)), name).toEqual(body(files.get(name)));
    }

    // Imported again: everything is recognised as there already, nothing is stored twice.
    const repeated = await sessionstore(target.address, ["import", out, "--json"]);
    expect(repeated.json()).toMatchObject({ appended: 0, present: 12, conflicts: [] });
    expect((await loadAll(target.client, "agent-7f3a")).messages).toHaveLength(5);
  });

  it("a .jsonl.gz archive holds the sessions one after another; it round-trips with labels", async () => {
    await append(source.client, [
      {
        sessionId: "labelled",
        messages: ['{"role":"user","content":"hi"}'],
        labels: { user: "alice" },
      },
    ]);
    const archive = join(await temp(), "all.jsonl.gz");
    expect((await sessionstore(source.address, ["export", archive])).code).toBe(0);
    const lines = gunzipSync(await readFile(archive))
      .toString()
      .split("\n");
    expect(lines[0]).toBe(
      '{"session_id":"agent-7f3a","created_at_ms":1731000000000,"agent_loop_version":"0.7.1","message_count":5}',
    );
    expect(lines.find((line) => line.includes('"session_id":"labelled"'))).toMatch(
      /"message_count":1,"labels":\{"user":"alice"\}\}$/,
    );
    const { server: target } = await start();
    const run = await sessionstore(target.address, ["import", archive]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^imported 6 sessions in [\d.]+ s: 13 messages appended, 0 already there\n/,
    );
    const listed = await sessionstore(target.address, ["ls", "--selector", "user=alice", "--json"]);
    expect(listed.json<{ sessionId: string }[]>().map((s) => s.sessionId)).toEqual(["labelled"]);
    expect((await loadAll(target.client, "precise")).messages).toEqual(
      (await loadAll(source.client, "precise")).messages,
    );
  });

  it("import reports a session the server holds other messages of, and leaves it (exit 4)", async () => {
    const { server: target } = await start();
    await append(target.client, [
      { sessionId: "precise", messages: ['{"role":"user","content":"other"}'] },
    ]);
    const run = await sessionstore(target.address, ["import", MOTOSAN_FIXTURES, "--json"]);
    expect(run.code).toBe(4);
    expect(run.json()).toMatchObject({ conflicts: ["precise"], torn: ["torn-1"] });
    expect((await loadAll(target.client, "precise")).messages).toEqual([
      '{"role":"user","content":"other"}',
    ]);
  });

  it("an export killed midway, run again, resumes and ends as an uninterrupted one, archive and directory", async () => {
    const { server } = await start();
    const message = (i: number) => `{"role":"user","content":"${"x".repeat(2000)} ${i}"}`;
    for (let batch = 0; batch < 5; batch++) {
      await append(
        server.client,
        Array.from({ length: 40 }, (_, i) => ({
          sessionId: `s-${String(batch * 40 + i).padStart(3, "0")}`,
          messages: Array.from({ length: 20 }, (_, m) => message(m)),
        })),
      );
    }
    const directory = await temp();
    const whole = join(directory, "whole.jsonl.gz");
    expect((await sessionstore(server.address, ["export", whole])).code).toBe(0);
    const wholeDir = join(directory, "whole");
    expect((await sessionstore(server.address, ["export", wholeDir])).code).toBe(0);

    for (const out of [join(directory, "cut.jsonl.gz"), join(directory, "cut")]) {
      const marker = out.endsWith(".gz") ? `${out}.partial.progress` : out;
      const child = spawn(process.execPath, [CLI, "export", out], {
        env: { ...process.env, SESSIONSTORE_ADDRESS: server.address },
        stdio: "ignore",
      });
      let running = true;
      const exited = new Promise((resolve) => child.on("exit", resolve)).then(() => {
        running = false;
      });
      // Killed once it has written some sessions, not all.
      for (;;) {
        if (!running) throw new Error(`the export to ${out} ended before it could be killed`);
        const progress = await stat(marker).catch(() => undefined);
        if (progress && (out.endsWith(".gz") || (await readdir(out)).length > 5)) break;
        await sleep(5);
      }
      child.kill("SIGKILL");
      await exited;
      if (out.endsWith(".gz")) {
        // As if the crash came after a session's bytes were written, before they were recorded.
        await appendFile(`${out}.partial`, "half a gzip member");
      }
      const resumed = await sessionstore(server.address, ["export", out, "--json"]);
      expect(resumed.code).toBe(0);
      const summary = resumed.json<{ sessions: number; skipped: number }>();
      expect(summary.skipped).toBeGreaterThan(0);
      expect(summary.sessions + summary.skipped).toBe(200);
    }
    expect(digest(gunzipSync(await readFile(join(directory, "cut.jsonl.gz"))))).toBe(
      digest(gunzipSync(await readFile(whole))),
    );
    const cut = digests(await filesOf(join(directory, "cut")));
    expect(cut).toHaveLength(200);
    expect(cut).toEqual(digests(await filesOf(wholeDir)));
    expect(await stat(join(directory, "cut.jsonl.gz.partial.progress")).catch(() => "gone")).toBe(
      "gone",
    );
  }, 180_000);

  describe("in a terminal", skipWithReason(tmuxMissing()), () => {
    it("export shows a progress bar with counts, rate and ETA, then the summary", async () => {
      const out = join(await temp(), "shown");
      const terminal = await Terminal.start([process.execPath, CLI, "export", out], {
        SESSIONSTORE_ADDRESS: source.address,
      });
      try {
        const { code, screen } = await terminal.exited();
        expect(code).toBe(0);
        expect(screen).toMatch(
          /exporting \|[█░=-]+\| \d+\/\d+ sessions, \d+ messages, [\d.]+ sessions\/s, ETA \d+s/,
        );
        expect(screen).toMatch(/exported \d+ sessions \(\d+ messages, \d+ bytes\) to /);
      } finally {
        await terminal.close();
      }
    });
  });
});
