import { cp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startChildServer } from "../helpers/child-server.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { sessionstore } from "../helpers/operator-cli.js";
import { run } from "../helpers/run-program.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

const NO_SERVER = "127.0.0.1:1";

/** A copy of motosan's files, damaged: a corrupt record inside one, a stray file and a link. */
async function damagedCopy(): Promise<string> {
  const dataDir = await makeTempDir();
  await cp(MOTOSAN_FIXTURES, dataDir, { recursive: true });
  await rm(join(dataDir, "README.md"));
  const precise = await readFile(join(dataDir, "precise.jsonl"), "utf8");
  const [header, first, second] = precise.split("\n");
  await writeFile(
    join(dataDir, "broken.jsonl"),
    `${header}\n${first}\n{"role":"User","cont\n${second}\n`,
  );
  await writeFile(join(dataDir, "notes.txt"), "not a session\n");
  await symlink(join(dataDir, "precise.jsonl"), join(dataDir, "linked.jsonl"));
  return dataDir;
}

interface Report {
  files: { session: string; records: number; tornBytes: number; corrupt?: { seq: number } }[];
  strays: { path: string; why: string }[];
  problems: number;
}

describe("sessionstore doctor, repair, stats and completion", { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("doctor reads every file offline and finds the torn tail, the corrupt record and the strays (exit 1)", async () => {
    const dataDir = await damagedCopy();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const checked = await sessionstore(NO_SERVER, ["doctor", "--data-dir", dataDir, "--json"]);
    expect(checked.code).toBe(1);
    const report = checked.json<Report>();
    const bySession = Object.fromEntries(report.files.map((file) => [file.session, file]));
    expect(Object.keys(bySession)).toEqual([
      "agent-7f3a",
      "broken",
      "empty",
      "no-header",
      "precise",
      "torn-1",
    ]);
    expect(bySession["agent-7f3a"]).toMatchObject({ records: 5, tornBytes: 0 });
    expect(bySession["torn-1"]).toMatchObject({ records: 3 });
    expect(bySession["torn-1"]?.tornBytes).toBeGreaterThan(0);
    expect(bySession.broken).toMatchObject({ records: 1, corrupt: { seq: 1 } });
    expect(report.strays.map((stray) => [stray.path.slice(dataDir.length + 1), stray.why])).toEqual(
      [
        ["linked.jsonl", "a symbolic link (never followed)"],
        ["notes.txt", "not a session file name (<id>.jsonl)"],
      ],
    );
    expect(report.problems).toBe(4);

    const readable = await sessionstore(NO_SERVER, ["doctor", "--data-dir", dataDir]);
    expect(readable.stdout).toMatch(
      /torn-1 +motosan +3 +torn tail: \d+ bytes after the last whole record/,
    );
    expect(readable.stdout).toMatch(
      /broken +motosan +1 +header says 2 +corrupt record at seq 1 \(byte \d+\)/,
    );
    expect(readable.stdout).toContain("6 session files, 13 records; 4 problems");
  });

  it("repair shows its plan, needs --yes when piped, cuts and quarantines keeping a backup; the server then serves the rest", async () => {
    const dataDir = await damagedCopy();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const original = await readFile(join(dataDir, "broken.jsonl"));
    const refused = await sessionstore(NO_SERVER, ["repair", "--data-dir", dataDir, "broken"]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain("broken: corrupt record at seq 1");
    expect(await readFile(join(dataDir, "broken.jsonl"))).toEqual(original);

    const dry = await sessionstore(NO_SERVER, [
      "repair",
      "--data-dir",
      dataDir,
      "broken",
      "--dry-run",
      "--json",
    ]);
    expect(dry.json()).toMatchObject({ repaired: false, keepRecords: 1 });
    expect(await readFile(join(dataDir, "broken.jsonl"))).toEqual(original);

    for (const id of ["broken", "torn-1"]) {
      const repaired = await sessionstore(NO_SERVER, [
        "repair",
        "--data-dir",
        dataDir,
        id,
        "--yes",
        "--json",
      ]);
      expect(repaired.code, id).toBe(0);
      const plan = repaired.json<{
        repaired: boolean;
        backup: string;
        quarantine: string;
        keepBytes: number;
      }>();
      expect(plan.repaired).toBe(true);
      const backup = await readFile(plan.backup);
      const kept = await readFile(join(dataDir, `${id}.jsonl`));
      // Nothing is lost: what is kept and what was cut make the file as it was.
      expect(Buffer.concat([kept, await readFile(plan.quarantine)])).toEqual(backup);
      expect(kept.length).toBe(plan.keepBytes);
    }
    expect(
      (await sessionstore(NO_SERVER, ["repair", "--data-dir", dataDir, "agent-7f3a"])).stdout,
    ).toBe("agent-7f3a: 5 whole records, nothing to repair\n");
    expect((await sessionstore(NO_SERVER, ["repair", "--data-dir", dataDir, "nope"])).code).toBe(3);
    await rm(join(dataDir, "notes.txt"));
    await rm(join(dataDir, "linked.jsonl"));
    expect((await sessionstore(NO_SERVER, ["doctor", "--data-dir", dataDir])).code).toBe(0);
    expect((await readdir(join(dataDir, ".sessionstore", "repair"))).length).toBe(4);

    // A server on the repaired directory serves the kept records (and repair refuses while it runs).
    const server = await startChildServer(["--data-dir", dataDir]);
    cleanups.push(async () => {
      server.client.close();
      server.process.kill("SIGTERM");
      await server.exited;
    });
    expect((await loadAll(server.client, "broken")).messages).toHaveLength(1);
    const busy = await sessionstore(NO_SERVER, [
      "repair",
      "--data-dir",
      dataDir,
      "broken",
      "--yes",
    ]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("stop the server before a repair");
  });

  it("stats counts sessions and messages, and reads buffered bytes and watchers from the metrics", async () => {
    const dataDir = await makeTempDir();
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startChildServer([
      "--data-dir",
      dataDir,
      "--metrics-listen",
      "127.0.0.1:0",
    ]);
    cleanups.push(async () => {
      server.client.close();
      server.process.kill("SIGTERM");
      await server.exited;
    });
    const metrics = server.logs.find(
      (entry) => typeof entry.msg === "string" && entry.msg.includes("/metrics"),
    );
    const metricsAddress = metrics?.address as string;
    await append(server.client, [
      {
        sessionId: "a",
        messages: ['{"role":"user","content":"one"}', '{"role":"user","content":"two"}'],
      },
      { sessionId: "b", messages: ['{"role":"user","content":"three"}'], sync: true },
    ]);
    const watch = server.client.watch({ sessionId: "a", fromSeq: 0 });
    watch.on("error", () => {}); // CANCELLED, when the test ends it
    await new Promise((resolve) => watch.once("data", resolve));
    cleanups.push(async () => watch.cancel());
    const stats = await sessionstore(server.address, [
      "stats",
      "--metrics",
      metricsAddress,
      "--json",
    ]);
    expect(stats.code).toBe(0);
    expect(stats.json()).toMatchObject({
      sessions: 2,
      messages: 3,
      server: { watchers: 1, messagesAppended: 3 },
    });
    const plain = await sessionstore(server.address, ["stats"]);
    expect(plain.stdout).toMatch(/^FIGURE +VALUE\nsessions +2\nmessages +3\n/);
  });

  it("completion bash completes commands and each command's options from the command tree", async () => {
    const script = (await sessionstore(NO_SERVER, ["completion", "bash"])).stdout;
    const complete = async (...words: string[]) => {
      const shell = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _sessionstore; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return (await run("bash", ["-c", shell])).stdout.toString().trim().split("\n");
    };
    expect(await complete("sessionstore", "ta")).toEqual(["tail"]);
    expect(await complete("sessionstore", "re")).toEqual(["rewind", "repair"]);
    expect(await complete("sessionstore", "tail", "--fo")).toEqual(["--follow"]);
    expect(await complete("sessionstore", "--json", "ls", "--re")).toEqual(["--recent"]);
    const zsh = await sessionstore(NO_SERVER, ["completion", "zsh"]);
    expect(zsh.stdout).toMatch(/^#compdef sessionstore\n/);
    expect(zsh.stdout).toContain("'doctor:offline\\: check every session file");
    expect((await sessionstore(NO_SERVER, ["completion", "fish"])).code).toBe(2);
  });
});
