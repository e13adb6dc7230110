import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ForkRequest,
  type ForkResponse,
  SessionStoreService,
  type TrimRequest,
  type TrimResponse,
  type WatchResponse,
} from "../../gen/sessionstore/v1/session_store.js";
import { Code, SessionStoreError } from "../../src/errors.js";
import { normalizeMessages } from "../../src/sessions/validation.js";
import { bytesOf, textsOf } from "../helpers/message-bytes.js";
import {
  GRPCURL,
  missingToolchains,
  PYTHON,
  requireTools,
  skipWithout,
} from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run, runOk } from "../helpers/run-program.js";
import {
  append,
  loadAll,
  makeTempDir,
  startTestServer,
  type TestServer,
  unary,
} from "../helpers/test-server.js";
import {
  deleteSession,
  expectStatus,
  flush,
  loadMeta,
  sessionFilePath,
} from "../integration/support.js";
import { SERDE_JSON_CORPUS, type Verdict } from "./serde-json-corpus.js";

/**
 * The Python and Go clients, grpcurl and motosan's own Rust crate against the real server.
 * scripts/setup-polyglot.sh installs what they need into .tools/; without it (or without python3,
 * go or cargo) these tests are skipped, and the end of the run says which and why, unless
 * SESSIONSTORE_REQUIRE_POLYGLOT=1 (CI), which makes a missing toolchain a failure.
 */

const HERE = join(REPOSITORY, "test/interop");
const MOTOSAN_CRATE = join(HERE, "motosan");
const MOTOSAN = join(MOTOSAN_CRATE, "target/debug/sessionstore-motosan-interop");

const missingForClients = missingToolchains("python", "go", "grpcurl");
const missingForMotosan = missingToolchains("cargo");

function lines(text: Buffer | string): string[] {
  return text.toString("utf8").split("\n").slice(0, -1);
}

/** The report both tour programs must print (test/interop/python/scenario.py, go/main.go). */
function expectedTour(prefix: string) {
  const session = `${prefix}-tour`;
  const ack = (sessionId: string, firstSeq: number, nextSeq: number) => ({
    session_id: sessionId,
    first_seq: firstSeq,
    next_seq: nextSeq,
    durable_count: 0,
  });
  const stored = [
    '{"role":"user","content":"héllo","n":1}',
    '{"role":"assistant","content":"hi","big":12345678901234567890}',
    '{"n":3}',
    '{"n":4}',
    '{"n":5}',
  ];
  return {
    append: ack(session, 0, 2),
    appender: [ack(session, 2, 3), ack(`${session}-other`, 0, 1), ack(session, 3, 5)],
    retry: ack(session, 3, 5),
    conflict: { code: status.ABORTED, actual_length: 5 },
    // A bad session id (append, meta), a message that is not JSON.
    invalid: [status.INVALID_ARGUMENT, status.INVALID_ARGUMENT, status.INVALID_ARGUMENT],
    load: stored,
    big: "12345678901234567890",
    last: stored.slice(3),
    range: stored.slice(1, 3),
    count_before_flush: [5, 0],
    flushed: 5,
    meta: [session, 5, 5],
    list: [session, `${session}-other`],
    watch: [
      [3, '{"n":4}'],
      [4, '{"n":5}'],
      [5, '{"n":6}'],
    ],
    watch_end: status.NOT_FOUND,
    deleted: [true, false],
    after_delete: [status.NOT_FOUND, []],
  };
}

/**
 * The report both programs' `agent` command must print (test/interop/python/scenario.py,
 * go/main.go), given test/interop/chat-openai.jsonl: an OpenAI Chat Completions conversation of a
 * turn whose tool call has its result, then a turn interrupted before call_2's result.
 */
function expectedAgentReport(prefix: string, conversation: string[]) {
  const session = `${prefix}-agent`;
  const failure = (code: status, reported: Record<string, number> = {}) => ({
    code,
    actual_length: null,
    actual_labels_revision: null,
    first_seq: null,
    ...reported,
  });
  return {
    created: [{ user: "alice" }, 1],
    set_labels: [{ user: "alice", env: "dev" }, 2],
    set_labels_stale: failure(status.ABORTED, { actual_labels_revision: 2 }),
    set_labels_unknown: failure(status.NOT_FOUND),
    list_selected: [session],
    list_updated: [`${session}-other`, session],
    // The last 5 messages start with a tool call's result: the window starts at the next turn.
    window: [4, conversation.slice(4), ["call_2"]],
    window_bytes: [4, 2, []],
    window_empty: [null, [], []],
    fork: [session, 4, 4, { user: "alice", env: "dev", branch: "b" }],
    fork_exists: failure(status.ALREADY_EXISTS),
    fork_past_end: failure(status.OUT_OF_RANGE, { actual_length: 6 }),
    watch_events: [
      ...conversation.slice(0, 4).map((text, seq) => ["message", seq, text]),
      ["rewound", 2],
      ["message", 2, '{"after":"rewind"}'],
    ],
    rewind: [conversation.slice(5), 5],
    rewind_stale: failure(status.ABORTED, { actual_length: 5 }),
    pop_item: JSON.parse(conversation[4] ?? ""),
    trim: [2, 2, 4],
    load_trimmed: failure(status.OUT_OF_RANGE, { first_seq: 2 }),
    load_kept: 2,
  };
}

/** Watches a session from the TypeScript side until it holds `count` messages. */
function watchUntil(server: TestServer, sessionId: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const call = server.client.watch({ sessionId, fromSeq: 0 });
    const received: string[] = [];
    call.on("data", (page: WatchResponse) => {
      if (page.firstSeq !== received.length) reject(new Error(`gap before seq ${page.firstSeq}`));
      received.push(...page.messages);
      if (received.length >= count) {
        call.cancel();
        resolve(received);
      }
    });
    call.on("error", (error) => {
      if (received.length < count) reject(error);
    });
  });
}

describe(
  "Python and Go clients, and grpcurl, against the server",
  skipWithout(missingForClients),
  () => {
    let server: TestServer;
    /** A server on the memory backend, which implements labels, Fork, Rewind, Trim and windows. */
    let memoryServer: TestServer;
    let chat: Buffer;
    let workDir: string;
    let goProgram: string;
    let vectors: Buffer;
    const python = (...args: string[]) => [
      join(HERE, "python/scenario.py"),
      server.server.address,
      ...args,
    ];
    const go = (...args: string[]) => [server.server.address, ...args];
    const grpcurl = async (...args: string[]) =>
      (await runOk(GRPCURL, ["-plaintext", ...args])).toString();

    beforeAll(async () => {
      requireTools(missingForClients);
      workDir = await makeTempDir("sessionstore-interop-");
      goProgram = join(workDir, "interop-go");
      await runOk("go", ["build", "-o", goProgram, "."], { cwd: join(HERE, "go") });
      vectors = await readFile(join(HERE, "messages.jsonl"));
      server = await startTestServer({ flushMessages: 10_000, flushIntervalMs: 60_000 });
      memoryServer = await startTestServer({ storage: "memory" });
      chat = await readFile(join(HERE, "chat-openai.jsonl"));
    }, 300_000);

    afterAll(async () => {
      await server?.close();
      await memoryServer?.close();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    it("Python: every call of the client, the error cases included, as the Go client sees them", async () => {
      const report = JSON.parse((await runOk(PYTHON, python("tour", "py"))).toString("utf8"));
      expect(report).toEqual(expectedTour("py"));
    });

    it("Go: every call of the client, the error cases included, as the Python client sees them", async () => {
      const report = JSON.parse((await runOk(goProgram, go("tour", "go"))).toString("utf8"));
      expect(report).toEqual(expectedTour("go"));
    });

    it("Python: labels, listing by selector and update time, windows, fork, watch events, rewind, pop_last and trim, as the Go client sees them", async () => {
      const address = memoryServer.server.address;
      const run = [join(HERE, "python/scenario.py"), address, "agent", "py"];
      const report = JSON.parse((await runOk(PYTHON, run, { input: chat })).toString("utf8"));
      expect(report).toEqual(expectedAgentReport("py", lines(chat)));
    });

    it("Go: labels, listing by selector and update time, windows, fork, watch events, rewind, PopLast and trim, as the Python client sees them", async () => {
      const run = [memoryServer.server.address, "agent", "go"];
      const report = JSON.parse((await runOk(goProgram, run, { input: chat })).toString("utf8"));
      expect(report).toEqual(expectedAgentReport("go", lines(chat)));
    });

    it("a session appended from Python is loaded from Go and watched from TypeScript, byte for byte", async () => {
      const count = lines(vectors).length;
      const watched = watchUntil(server, "from-python", count);

      const ack = JSON.parse(
        (await runOk(PYTHON, python("append", "from-python"), { input: vectors })).toString(),
      );
      expect(ack).toEqual({
        session_id: "from-python",
        first_seq: 0,
        next_seq: count,
        durable_count: 0,
      });

      const loadedByGo = await runOk(goProgram, go("load", "from-python"));
      expect(loadedByGo.toString("utf8")).toBe(vectors.toString("utf8"));
      expect(loadedByGo.equals(vectors)).toBe(true);
      expect(Buffer.from((await watched).map((m) => `${m}\n`).join(""))).toEqual(vectors);
      // And on disk, one message per line, as sent.
      await flush(server.client, "from-python");
      const file = await readFile(sessionFilePath(server.dataDir, "from-python"));
      expect(file.subarray(file.indexOf("\n") + 1)).toEqual(vectors);
    });

    it("a session appended from Go is loaded from Python, byte for byte", async () => {
      const ack = JSON.parse(
        (await runOk(goProgram, go("append", "from-go"), { input: vectors })).toString(),
      );
      expect(ack).toMatchObject({
        session_id: "from-go",
        first_seq: 0,
        next_seq: lines(vectors).length,
      });
      expect(await runOk(PYTHON, python("load", "from-go"))).toEqual(vectors);
    });

    it("the example agents of both languages take turns on one session", async () => {
      const address = server.server.address;
      const pythonAgent = [
        join(REPOSITORY, "clients/python/examples/agent.py"),
        "--address",
        address,
      ];
      const goAgent = ["run", "./examples/agent", "-address", address];
      const session = ["--session", "agents"];
      await runOk(PYTHON, [...pythonAgent, ...session, "first"]);
      const goOutput = await runOk("go", [...goAgent, "-session", "agents", "second"], {
        cwd: join(REPOSITORY, "clients/go"),
      });
      expect(goOutput.toString()).toContain("session agents: turn stored at seqs 2-3");
      const third = await runOk(PYTHON, [...pythonAgent, ...session, "third"]);
      expect(lines(third)).toEqual([
        "session agents: turn stored at seqs 4-5",
        "  2 user      second",
        '  3 assistant (turn 2) You said: "second"',
        "  4 user      third",
        "  5 assistant (turn 3) You said: 'third'",
      ]);
      const history = (await loadAll(server.client, "agents")).messages.map((m) => JSON.parse(m));
      expect(history.map((m) => m.role)).toEqual([
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
      ]);
      await deleteSession(server.client, "agents");
    });

    it("the Python example agent's --help says, in whole sentences, what it does and how to run it", async () => {
      const agent = join(REPOSITORY, "clients/python/examples/agent.py");
      const help = (await runOk(PYTHON, [agent, "--help"])).toString();
      expect(help).toContain("session never interleave their turns.");
      expect(help).toContain(
        'python examples/agent.py --session demo "What is the capital of France?"',
      );
      expect(help).toContain("else $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051.");
    });

    it("grpcurl describes every service reflection lists, and calls health through it", async () => {
      const address = server.server.address;
      const services = lines(await grpcurl(address, "list"));
      expect(services).toEqual(
        expect.arrayContaining(["grpc.health.v1.Health", "sessionstore.v1.SessionStore"]),
      );
      for (const service of services) {
        expect(await grpcurl(address, "describe", service)).toContain(`${service} is a service:`);
      }
      // With no symbol, grpcurl describes every service at once.
      expect(await grpcurl(address, "describe")).toContain("service Health {");
      expect(JSON.parse(await grpcurl(address, "grpc.health.v1.Health/Check"))).toEqual({
        status: "SERVING",
      });
      // Map fields and proto3 `optional` are described as their protos declare them.
      expect(await grpcurl(address, "describe", "grpc.health.v1.HealthListResponse")).toContain(
        "map<string, .grpc.health.v1.HealthCheckResponse> statuses = 1;",
      );
      expect(await grpcurl(address, "describe", "sessionstore.v1.AppendRequest")).toContain(
        "optional uint64 expected_seq = 3;",
      );
    });

    it("grpcurl lists every RPC of the service through reflection, describes it and calls it", async () => {
      const address = memoryServer.server.address;
      const service = "sessionstore.v1.SessionStore";
      const rpcs = Object.values(SessionStoreService).map((method) => method.path.split("/")[2]);
      expect(lines(await grpcurl(address, "list", service)).sort()).toEqual(
        rpcs.map((rpc) => `${service}.${rpc}`).sort(),
      );
      for (const rpc of rpcs) {
        expect(await grpcurl(address, "describe", `${service}.${rpc}`)).toMatch(
          new RegExp(`rpc ${rpc} \\( (stream )?\\.sessionstore\\.v1\\.${rpc}Request \\)`),
        );
      }
      expect(await grpcurl(address, "describe", "sessionstore.v1.SessionMeta")).toMatch(
        /map<string, string> labels = 7;[\s\S]*uint64 first_seq = 11;/,
      );

      // One call of each, in proto3's canonical JSON, on one session and a fork of it.
      const call = async (rpc: string, request: object) =>
        JSON.parse(await grpcurl("-d", JSON.stringify(request), address, `${service}/${rpc}`));
      const session = { sessionId: "grpcurl-agent" };
      const messages = ['{"role":"user","content":"hi"}', '{"role":"assistant","content":"hello"}'];
      const answers: Record<string, unknown> = {
        Append: await call("Append", { ...session, messages, labels: { user: "alice" } }),
        SetLabels: await call("SetLabels", { ...session, labels: { env: "dev" } }),
        List: await call("List", {
          labelSelector: "user=alice",
          order: "LIST_ORDER_BY_UPDATED_DESC",
        }),
        LoadMeta: await call("LoadMeta", session),
        Load: await call("Load", { ...session, maxBytes: 100, wholeTurns: true }),
        Fork: await call("Fork", { ...session, atSeq: 1, newSessionId: "grpcurl-fork" }),
        Rewind: await call("Rewind", { ...session, toSeq: 1, expectedSeq: 2 }),
        Trim: await call("Trim", { ...session, beforeSeq: 1 }),
        Flush: await call("Flush", session),
      };
      // Watch streams until its deadline: what came before it is the fork's message.
      const watch = await run(GRPCURL, [
        "-plaintext",
        "-max-time",
        "1",
        "-d",
        '{"sessionId":"grpcurl-fork"}',
        address,
        `${service}/Watch`,
      ]);
      expect(watch.stderr).toContain("Code: DeadlineExceeded");
      answers.Watch = JSON.parse(watch.stdout.toString());
      answers.Delete = await call("Delete", { sessionId: "grpcurl-fork" });
      expect(Object.keys(answers).sort()).toEqual([...rpcs].sort());
      expect(answers).toMatchObject({
        Append: { sessionId: "grpcurl-agent", nextSeq: "2" },
        SetLabels: { meta: { labels: { user: "alice", env: "dev" }, labelsRevision: "2" } },
        List: { sessions: [{ sessionId: "grpcurl-agent" }] },
        LoadMeta: { meta: { messageCount: "2" } },
        Load: { messages },
        Fork: {
          meta: { sessionId: "grpcurl-fork", parentSessionId: "grpcurl-agent", parentSeq: "1" },
        },
        Rewind: { droppedMessages: messages.slice(1), meta: { messageCount: "1" } },
        Trim: { trimmed: "1", meta: { firstSeq: "1" } },
        Flush: {},
        Watch: { messages: messages.slice(0, 1) },
        Delete: { existed: true },
      });
    });

    it("grpcurl lists, describes and calls the service through reflection", async () => {
      const address = server.server.address;
      expect(lines(await grpcurl(address, "list"))).toContain("sessionstore.v1.SessionStore");
      expect(await grpcurl(address, "describe", "sessionstore.v1.SessionStore")).toContain(
        "rpc Watch ( .sessionstore.v1.WatchRequest ) returns ( stream .sessionstore.v1.WatchResponse );",
      );

      // Requests and answers in proto3's canonical JSON form (lowerCamelCase field names), as
      // grpcurl speaks it with a server in any language: reflection serves protoc's descriptors.
      const request = { sessionId: "via-grpcurl", messages: ['{"via":"grpcurl","n":1}'] };
      const method = "sessionstore.v1.SessionStore";
      const ack = JSON.parse(
        await grpcurl("-d", JSON.stringify(request), address, `${method}/Append`),
      );
      expect(ack).toEqual({ sessionId: "via-grpcurl", nextSeq: "1" });
      const meta = JSON.parse(
        await grpcurl("-d", '{"sessionId":"via-grpcurl"}', address, `${method}/LoadMeta`),
      );
      expect(meta.meta).toMatchObject({ sessionId: "via-grpcurl", messageCount: "1" });
      expect((await loadAll(server.client, "via-grpcurl")).messages).toEqual(request.messages);

      // The proto's own field names work too: reflection serves the descriptor as written.
      expect(await grpcurl(address, "describe", "sessionstore.v1.AppendRequest")).toMatch(
        /string session_id = 1;[\s\S]*uint64 expected_seq = 3;/,
      );
      const snake = { session_id: "via-grpcurl", messages: ['{"n":2}'], expected_seq: 1 };
      const snakeAck = JSON.parse(
        await grpcurl("-d", JSON.stringify(snake), address, `${method}/Append`),
      );
      expect(snakeAck).toEqual({ sessionId: "via-grpcurl", firstSeq: "1", nextSeq: "2" });

      const unknown = await run(GRPCURL, [
        "-plaintext",
        "-d",
        '{"sessionId":"nobody"}',
        address,
        `${method}/LoadMeta`,
      ]);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain("Code: NotFound");
    });
  },
);

/**
 * Where our validator refuses what serde_json accepts as a `serde_json::Value`, on purpose; by
 * case name in test/interop/serde-json-corpus.ts. The reverse never is: motosan must read every
 * message we store.
 */
const DELIBERATE_DIFFERENCES: { name: string; serdeJson: Verdict; ours: Verdict }[] = [
  // The contract makes each message one JSON object; serde_json reads any JSON value (and
  // motosan's Message type would refuse an array too).
  { name: "an array", serdeJson: "accepts", ours: "refuses" },
];

/** Whether our validator stores `text` as a message: the rule behind every Append. */
function ourVerdict(text: string): Verdict {
  try {
    normalizeMessages(bytesOf([text]), { maxMessageBytes: 1 << 20, maxRequestMessages: 1 });
    return "accepts";
  } catch (error) {
    if (error instanceof SessionStoreError && error.code === Code.InvalidArgument) return "refuses";
    throw error;
  }
}

describe(
  "motosan_agent_loop's own FileSessionStore, Message and SessionStore trait (Rust crate 0.7)",
  skipWithout(missingForMotosan),
  () => {
    let conversation: Buffer;
    const motosan = (...args: string[]) => runOk(MOTOSAN, args);

    beforeAll(async () => {
      requireTools(missingForMotosan);
      // Quick when scripts/setup-polyglot.sh built it; the first build takes a minute or more.
      await runOk("cargo", [
        "build",
        "--quiet",
        "--locked",
        "--manifest-path",
        join(MOTOSAN_CRATE, "Cargo.toml"),
      ]);
      conversation = await motosan("messages");
    }, 600_000);

    /** serde_json's verdict on each text, with its error when it refuses. */
    async function serdeJsonVerdicts(texts: string[]) {
      const input = Buffer.from(texts.map((text) => `${JSON.stringify(text)}\n`).join(""));
      const verdicts = lines(await runOk(MOTOSAN, ["check-json"], { input })).map(
        (line) => JSON.parse(line) as { accepted: boolean; error?: string },
      );
      expect(verdicts).toHaveLength(texts.length);
      return verdicts.map(({ accepted, error }) => ({
        serdeJson: (accepted ? "accepts" : "refuses") as Verdict,
        error,
      }));
    }

    it("serde_json gives every verdict the corpus of JSON edge cases records", async () => {
      const verdicts = await serdeJsonVerdicts(SERDE_JSON_CORPUS.map(({ text }) => text));
      const changed = SERDE_JSON_CORPUS.flatMap(({ name, serdeJson }, index) => {
        const verdict = verdicts[index];
        return verdict?.serdeJson === serdeJson ? [] : [{ name, recorded: serdeJson, ...verdict }];
      });
      expect(changed).toEqual([]);
    });

    it("our validator refuses what serde_json refuses, case by case, and motosan reads what it stores", async () => {
      const verdicts = await serdeJsonVerdicts(SERDE_JSON_CORPUS.map(({ text }) => text));
      const disagreements = SERDE_JSON_CORPUS.flatMap(({ name, text }, index) => {
        const ours = ourVerdict(text);
        const serdeJson = verdicts[index]?.serdeJson;
        return ours === serdeJson ? [] : [{ name, serdeJson, ours }];
      });
      expect(disagreements).toEqual(DELIBERATE_DIFFERENCES);

      // What we store of each case we accept (CR/LF turned into spaces) is what motosan reads.
      const stored = SERDE_JSON_CORPUS.filter(({ text }) => ourVerdict(text) === "accepts").flatMap(
        ({ text }) =>
          textsOf(
            normalizeMessages(bytesOf([text]), { maxMessageBytes: 1 << 20, maxRequestMessages: 1 }),
          ),
      );
      expect((await serdeJsonVerdicts(stored)).filter((v) => v.serdeJson !== "accepts")).toEqual(
        [],
      );
    });

    it("serves a session that motosan's FileSessionStore wrote, and motosan reads it back after our appends", async () => {
      const dataDir = await makeTempDir();
      await motosan("write", dataDir, "by-motosan");
      const header = JSON.parse(
        lines(await readFile(sessionFilePath(dataDir, "by-motosan")))[0] ?? "",
      );
      const server = await startTestServer({ dataDir });
      try {
        const loaded = (await loadAll(server.client, "by-motosan")).messages;
        expect(Buffer.from(loaded.map((m) => `${m}\n`).join(""))).toEqual(conversation);
        expect(await loadMeta(server.client, "by-motosan")).toMatchObject({
          messageCount: 5,
          createdAtMs: header.created_at_ms,
          agentLoopVersion: "0.7.1",
        });

        const more = lines(conversation).slice(1, 3);
        await append(server.client, [{ sessionId: "by-motosan", messages: more }]);
        await flush(server.client, "by-motosan");
        expect(lines(await motosan("read", dataDir, "by-motosan"))).toEqual([
          ...lines(conversation),
          ...more,
        ]);
      } finally {
        await server.close();
      }
    });

    it("a motosan agent keeps its history in our server through the crate's SessionStore trait over gRPC", async () => {
      const server = await startTestServer({ flushMessages: 10_000, flushIntervalMs: 60_000 });
      const address = server.server.address;
      try {
        await motosan("remote-write", address, "rust-agent");
        expect(await motosan("remote-read", address, "rust-agent")).toEqual(conversation);
        const loaded = (await loadAll(server.client, "rust-agent")).messages;
        expect(Buffer.from(loaded.map((m) => `${m}\n`).join(""))).toEqual(conversation);
        expect(JSON.parse((await motosan("remote-list", address)).toString())).toEqual([
          "rust-agent",
        ]);
        // remote-write flushed: the file is there, and motosan's FileSessionStore reads it.
        expect(await motosan("read", server.dataDir, "rust-agent")).toEqual(conversation);

        const refused = await run(MOTOSAN, ["remote-read", address, "../escape"]);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/sessionstore: InvalidArgument: .*1-200 characters/);

        await motosan("remote-delete", address, "rust-agent");
        await expectStatus(loadMeta(server.client, "rust-agent"), status.NOT_FOUND);
      } finally {
        await server.close();
      }
    });

    it("a session appended through our server (Messages serialized by the crate) loads in motosan", async () => {
      const server = await startTestServer({ flushMessages: 10_000, flushIntervalMs: 60_000 });
      try {
        const messages = lines(conversation);
        await append(server.client, [{ sessionId: "for-motosan", messages: messages.slice(0, 2) }]);
        await flush(server.client, "for-motosan");
        await append(server.client, [{ sessionId: "for-motosan", messages: messages.slice(2) }]);
        await flush(server.client, "for-motosan");

        expect(await motosan("read", server.dataDir, "for-motosan")).toEqual(conversation);
        const meta = JSON.parse((await motosan("meta", server.dataDir, "for-motosan")).toString());
        expect(meta).toMatchObject({ session_id: "for-motosan", message_count: 5 });
      } finally {
        await server.close();
      }
    });

    it("reads a fork's file as the fork's own messages, and a trimmed file from its first kept one", async () => {
      const server = await startTestServer({});
      try {
        const messages = lines(conversation);
        await append(server.client, [{ sessionId: "source", messages, sync: true }]);
        await unary<ForkRequest, ForkResponse>((r, cb) => server.client.fork(r, cb), {
          sessionId: "source",
          atSeq: 3,
          newSessionId: "branch",
          labels: {},
        });
        const own = messages.slice(1, 2);
        await append(server.client, [{ sessionId: "branch", messages: own, expectedSeq: 3 }]);
        await flush(server.client, "branch");
        await unary<TrimRequest, TrimResponse>((r, cb) => server.client.trim(r, cb), {
          sessionId: "source",
          beforeSeq: 2,
        });

        expect(lines(await motosan("read", server.dataDir, "branch"))).toEqual(own);
        const meta = JSON.parse((await motosan("meta", server.dataDir, "branch")).toString());
        expect(meta).toMatchObject({ session_id: "branch", message_count: 1 });
        expect(lines(await motosan("read", server.dataDir, "source"))).toEqual(messages.slice(2));
        // Through the server, the fork has every message, the shared ones included.
        expect((await loadAll(server.client, "branch")).messages).toEqual([
          ...messages.slice(0, 3),
          ...own,
        ]);
      } finally {
        await server.close();
      }
    });
  },
);
