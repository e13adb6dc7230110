import { cp, rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { CLI, sessionstore } from "../helpers/operator-cli.js";
import { run } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { Terminal, tmuxMissing } from "../helpers/terminal.js";
import { append, loadAll, makeTempDir, unaryRpcs } from "../helpers/test-server.js";

/** The messages of agent-7f3a.jsonl (motosan's dialect), as stored. */
const AGENT = [
  '{"role":"System","content":"You are a careful assistant.","tool_call_id":null,"tool_calls":[]}',
  '{"role":"User","content":"What is 2+2? Also: naïve café ☕ and 😀","tool_call_id":null,"tool_calls":[]}',
  '{"role":"Assistant","content":"","tool_call_id":null,"tool_calls":[{"id":"call_1","name":"calc","args":{"expr":"2+2"}}]}',
  '{"role":"Tool","content":"4","tool_call_id":"call_1","tool_calls":[]}',
  '{"role":"Assistant","content":"2+2 is 4.","tool_call_id":null,"tool_calls":[]}',
];

const CHAT = [
  '{"role":"system","content":"Be brief."}',
  '{"role":"user","content":"Weather in Paris?"}',
  '{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{}"}}]}',
  '{"role":"tool","tool_call_id":"c1","content":"sunny"}',
  '{"role":"assistant","content":"Sunny, n=12345678901234567890."}',
];

const ESC = "\u001b[";

/** `text` after the SGR escape of colour `code` on the same line (tmux capture-pane -e). */
const inColour = (code: number, text: string) => new RegExp(`\\x1b\\[${code}m[^\\n]*${text}`);

describe("sessionstore ls, cat, meta, rm, fork, rewind, trim, label against a server", {
  timeout: 120_000,
}, () => {
  let server: ChildServer;
  let dataDir: string;
  const terminals: Terminal[] = [];
  const cli = (args: string[], env?: NodeJS.ProcessEnv) =>
    sessionstore(server.address, args, { env });

  beforeAll(async () => {
    dataDir = await makeTempDir();
    await cp(MOTOSAN_FIXTURES, dataDir, { recursive: true });
    await rm(`${dataDir}/README.md`);
    server = await startChildServer(["--data-dir", dataDir]);
    await append(server.client, [
      { sessionId: "chat-1", messages: CHAT, labels: { user: "alice" } },
      { sessionId: "chat-2", messages: CHAT.slice(0, 2), labels: { user: "bob" } },
    ]);
  });
  afterAll(async () => {
    for (const terminal of terminals) await terminal.close();
    server.client.close();
    server.process.kill("SIGTERM");
    await server.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it("ls --json lists every session with its figures; --prefix and --selector narrow it", async () => {
    const all = await cli(["ls", "--json"]);
    expect(all.code).toBe(0);
    const sessions = all.json<{ sessionId: string; messageCount: number; labels: object }[]>();
    expect(sessions.map((s) => [s.sessionId, s.messageCount])).toEqual([
      ["agent-7f3a", 5],
      ["chat-1", 5],
      ["chat-2", 2],
      ["empty", 0],
      ["no-header", 2],
      ["precise", 2],
      ["torn-1", 3],
    ]);
    expect(sessions[1]?.labels).toEqual({ user: "alice" });
    const chats = (await cli(["ls", "--prefix", "chat-", "--json"])).json<
      { sessionId: string }[]
    >();
    expect(chats.map((s) => s.sessionId)).toEqual(["chat-1", "chat-2"]);
    const bobs = (await cli(["ls", "--selector", "user=bob", "--json"])).json<
      { sessionId: string }[]
    >();
    expect(bobs.map((s) => s.sessionId)).toEqual(["chat-2"]);
  });

  it("ls piped is a borderless table without colour: a header, then a row per session", async () => {
    const run = await cli(["ls", "--prefix", "chat-"]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(ESC);
    const rows = run.stdout
      .trimEnd()
      .split("\n")
      .map((line) => line.split(/\s{2,}/));
    expect(rows[0]).toEqual(["ID", "MESSAGES", "DURABLE", "CREATED", "UPDATED", "LABELS"]);
    expect(rows[1]?.[0]).toBe("chat-1");
    expect(rows[1]?.[1]).toBe("5");
    expect(rows[1]?.[2]).toMatch(/^[0-5]$/); // durable: as far as the server flushed
    expect(rows[1]?.at(-1)).toBe("user=alice");
    expect(rows).toHaveLength(3);
  });

  it("cat piped prints the stored messages byte for byte, one per line; --last and --from pick", async () => {
    const all = await cli(["cat", "chat-1"]);
    expect(all).toMatchObject({ code: 0, stdout: `${CHAT.join("\n")}\n` });
    expect((await cli(["cat", "chat-1", "--last", "2"])).stdout).toBe(
      `${CHAT.slice(3).join("\n")}\n`,
    );
    expect((await cli(["cat", "chat-1", "--from", "4"])).stdout).toBe(`${CHAT[4]}\n`);
    const json = (await cli(["cat", "agent-7f3a", "--json", "--last", "1"])).stdout;
    expect(json).toBe(`{"seq":4,"message":${AGENT[4]}}\n`);
  });

  it("a reader that closes the pipe early (| head -c 1) ends it quietly, exit 0", async () => {
    // More than a pipe holds, so that the CLI is still writing when head has gone.
    const line = JSON.stringify({ role: "user", content: "x".repeat(500) });
    await append(server.client, [{ sessionId: "long", messages: Array(1000).fill(line) }]);
    const piped = await run(
      "bash",
      ["-o", "pipefail", "-c", `"$0" "$1" cat long | head -c 1`, process.execPath, CLI],
      { env: { SESSIONSTORE_ADDRESS: server.address }, timeoutMs: 30_000 },
    );
    expect(piped.stderr.toString()).toBe("");
    expect(piped).toMatchObject({ code: 0 });
    expect(piped.stdout.toString()).toBe("{");
  });

  it("a missing session is exit 3 with one line saying so; bad usage exit 2", async () => {
    for (const command of [
      ["cat", "nope"],
      ["meta", "nope"],
    ]) {
      const run = await cli(command);
      expect(run.code).toBe(3);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(/nope does not exist \(NOT_FOUND\)\n$/);
    }
    expect((await cli(["cat"])).code).toBe(2);
    expect((await cli(["cat", "chat-1", "--last", "x"])).code).toBe(2);
    expect((await cli(["frobnicate"])).code).toBe(2);
  });

  it("an unreachable server is exit 5, naming the address", async () => {
    const run = await sessionstore("127.0.0.1:1", ["ls"]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain("cannot reach the server at 127.0.0.1:1");
  });

  it("meta --json gives the session's meta", async () => {
    const meta = (await cli(["meta", "agent-7f3a", "--json"])).json<Record<string, unknown>>();
    expect(meta).toMatchObject({
      sessionId: "agent-7f3a",
      messageCount: 5,
      createdAtMs: 1731000000000,
      agentLoopVersion: "0.7.1",
    });
  });

  it("label sets and removes labels, guarded by --expected-revision (exit 4 when stale)", async () => {
    await append(server.client, [
      { sessionId: "lab", messages: CHAT.slice(0, 1), labels: { a: "1" } },
    ]);
    const set = (await cli(["label", "lab", "b=2", "a=", "--json"])).json();
    expect(set).toEqual({ labels: { b: "2" }, labelsRevision: 2 });
    const stale = await cli(["label", "lab", "c=3", "--expected-revision", "1"]);
    expect(stale.code).toBe(4);
    expect((await cli(["label", "lab", "--json"])).json()).toEqual({
      labels: { b: "2" },
      labelsRevision: 2,
    });
    expect((await cli(["label", "lab", "nonsense"])).code).toBe(2);
  });

  it("fork, rewind and trim do what their RPCs do and print the outcome", async () => {
    const fork = (
      await cli(["fork", "chat-1", "3", "chat-1-b", "--label", "branch=b", "--json"])
    ).json();
    expect(fork).toMatchObject({
      sessionId: "chat-1-b",
      messageCount: 3,
      parentSessionId: "chat-1",
      parentSeq: 3,
      labels: { user: "alice", branch: "b" },
    });
    expect((await cli(["fork", "chat-1", "3", "chat-1-b"])).code).toBe(4); // the name is taken
    const rewind = (await cli(["rewind", "chat-1-b", "1", "--expected-seq", "3", "--json"])).json();
    expect(rewind).toMatchObject({ dropped: 2, meta: { messageCount: 1 } });
    expect((await cli(["rewind", "chat-1-b", "0", "--expected-seq", "3"])).code).toBe(4);
    const trim = await cli(["trim", "chat-1", "2"]);
    expect(trim).toMatchObject({
      code: 0,
      stdout: "trimmed 2 messages of chat-1: it starts at seq 2 now\n",
    });
    expect((await loadAll(server.client, "chat-1")).messages).toEqual(CHAT.slice(2));
    expect((await loadAll(server.client, "chat-1-b")).messages).toEqual(CHAT.slice(0, 1));
  });

  it("rm refuses without --yes when not on a terminal; with it deletes, exit 3 for a missing one", async () => {
    await append(server.client, [{ sessionId: "gone-1", messages: CHAT.slice(0, 1) }]);
    const refused = await cli(["rm", "gone-1"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("pass --yes");
    expect(
      (await unaryRpcs(server.client).loadMeta({ sessionId: "gone-1" })).meta?.messageCount,
    ).toBe(1);
    const removed = await cli(["rm", "--yes", "gone-1", "never-was", "--json"]);
    expect(removed.code).toBe(3);
    expect(removed.json()).toEqual([
      { sessionId: "gone-1", existed: true },
      { sessionId: "never-was", existed: false },
    ]);
    await expect(unaryRpcs(server.client).loadMeta({ sessionId: "gone-1" })).rejects.toThrow(
      /NOT_FOUND/,
    );
  });

  it("--help of every command has examples and says the exit codes at the top", async () => {
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("Exit codes: 0 ok, 1 failure, 2 usage");
    for (const command of [
      "ls",
      "cat",
      "meta",
      "rm",
      "fork",
      "rewind",
      "trim",
      "label",
      "tail",
      "export",
      "import",
      "stats",
      "doctor",
      "repair",
      "completion",
    ]) {
      const help = await cli([command, "--help"]);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toMatch(/Examples:\n {2}\$ sessionstore /);
    }
    // serve, copy and migrate keep their own usage.
    expect((await cli(["serve", "--help"])).stdout).toMatch(/^Usage: sessionstore serve/);
  });

  describe("in a terminal", skipWithReason(tmuxMissing()), () => {
    const inTerminal = async (args: string[], env: Record<string, string> = {}) => {
      const terminal = await Terminal.start([process.execPath, CLI, ...args], {
        SESSIONSTORE_ADDRESS: server.address,
        ...env,
      });
      terminals.push(terminal);
      return terminal;
    };

    it("cat shows each message under its role, coloured by role, in motosan's and OpenAI's dialects", async () => {
      const motosan = await (await inTerminal(["cat", "agent-7f3a"])).exited();
      expect(motosan.code).toBe(0);
      expect(motosan.screen).toContain("#1 User\n    What is 2+2? Also: naïve café ☕ and 😀");
      expect(motosan.screen).toContain('#2 Assistant\n    -> calc({"expr":"2+2"}) [call_1]');
      expect(motosan.screen).toContain("#3 Tool\n    <- [call_1] 4");
      // Roles in colours of their own: user green, assistant cyan, tool yellow, system magenta.
      expect(motosan.escaped).toMatch(inColour(32, "User"));
      expect(motosan.escaped).toMatch(inColour(36, "Assistant"));
      expect(motosan.escaped).toMatch(inColour(33, "Tool"));
      expect(motosan.escaped).toMatch(inColour(35, "System"));
      const chat = (await (await inTerminal(["cat", "chat-1-b"])).exited()).screen;
      expect(chat).toContain("#0 system\n    Be brief.");
    });

    it("cat --raw prints JSONL even there; NO_COLOR turns colour off", async () => {
      const raw = await (await inTerminal(["cat", "agent-7f3a", "--raw", "--last", "1"])).exited();
      expect(raw.screen.trim()).toBe(AGENT[4]);
      const plain = await (await inTerminal(["ls"], { NO_COLOR: "1" })).exited();
      expect(plain.code).toBe(0);
      expect(plain.escaped).not.toContain(`${ESC}1m`);
      expect(plain.screen).toMatch(/┌─+┬/); // boxed on a terminal
      const coloured = await (await inTerminal(["ls"])).exited();
      expect(coloured.escaped).toContain(`${ESC}1m`); // a bold header
    });

    it("rm asks first: no deletes nothing, yes deletes", async () => {
      await append(server.client, [{ sessionId: "ask-1", messages: CHAT.slice(0, 1) }]);
      const no = await inTerminal(["rm", "ask-1"]);
      await no.waitFor("delete ask-1 for good? [y/N]");
      await no.keys("n", "Enter");
      expect((await no.exited()).code).toBe(1);
      expect(
        (await unaryRpcs(server.client).loadMeta({ sessionId: "ask-1" })).meta?.messageCount,
      ).toBe(1);
      const yes = await inTerminal(["rm", "ask-1"]);
      await yes.waitFor("[y/N]");
      await yes.keys("y", "Enter");
      const done = await yes.exited();
      expect(done.code).toBe(0);
      expect(done.screen).toContain("deleted ask-1");
    });
  });
});
