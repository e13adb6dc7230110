import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import { type Command, codeBlocks, commands } from "../helpers/markdown-code-blocks.js";
import { withBuiltClient } from "../helpers/packed-client.js";
import {
  missingToolchains,
  requireTools,
  skipWithout,
  type Toolchain,
} from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The examples of examples/*: each README's commands (the blocks marked `<!-- ci: example -->`)
 * run as written, by bash at the repository's root, against a real server of this file's
 * (SESSIONSTORE_ADDRESS) and with no OPENAI_API_KEY (each example's scripted model, offline). Each
 * must print the conversation, the history resumed by a new process and the undo, exactly as the
 * README shows; then the server must hold the session's first two turns (with --keep) or nothing
 * (without).
 */

/** A turn of the examples' conversation, as each of them has it: a question answered by a tool. */
interface Turn {
  question: string;
  args: { a: number; op: string; b: number };
  result: string;
  answer: string;
}
const TURNS: Turn[] = [
  {
    question: "What is 12 * 34?",
    args: { a: 12, op: "*", b: 34 },
    result: "408",
    answer: "12 * 34 = 408.",
  },
  {
    question: "And 408 + 1?",
    args: { a: 408, op: "+", b: 1 },
    result: "409",
    answer: "408 + 1 = 409.",
  },
];

interface Example {
  /** Its folder under examples/, and its npm script's name after `example:`. */
  name: string;
  toolchains: Toolchain[];
  /** Whether its command builds clients/ts (it runs with the workspace's client). */
  buildsClient: boolean;
  /** The messages a turn leaves in the session, in the framework's form (those fields of them). */
  stored(turn: Turn, callId: string): object[];
}

const EXAMPLES: Example[] = [
  {
    name: "openai-agents-python",
    toolchains: ["openaiAgents"],
    buildsClient: false,
    stored: (turn, callId) => [
      { role: "user", content: turn.question },
      {
        type: "function_call",
        name: "calculate",
        call_id: callId,
        arguments: JSON.stringify(turn.args),
      },
      { type: "function_call_output", call_id: callId, output: turn.result },
      { type: "message", role: "assistant", content: [{ type: "output_text", text: turn.answer }] },
    ],
  },
  {
    name: "openai-agents-js",
    toolchains: [],
    buildsClient: true,
    stored: (turn, callId) => [
      { type: "message", role: "user", content: turn.question },
      { type: "function_call", name: "calculate", callId, arguments: JSON.stringify(turn.args) },
      { type: "function_call_result", callId, output: { type: "text", text: turn.result } },
      { type: "message", role: "assistant", content: [{ type: "output_text", text: turn.answer }] },
    ],
  },
  {
    name: "langchain-python",
    toolchains: ["python", "langchain"],
    buildsClient: false,
    stored: (turn, callId) => [
      { type: "human", data: { content: turn.question } },
      {
        type: "ai",
        data: { content: "", tool_calls: [{ name: "calculate", args: turn.args, id: callId }] },
      },
      { type: "tool", data: { content: turn.result, tool_call_id: callId } },
      { type: "ai", data: { content: turn.answer, tool_calls: [] } },
    ],
  },
];

/**
 * A command's longest run: the JavaScript example may first wait for another test file's build of
 * the client, then builds it itself.
 */
const RUN_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = RUN_TIMEOUT_MS + 30_000;

/** The address the READMEs' output shows: where `npm start` serves. */
const DEFAULT_ADDRESS = "127.0.0.1:50051";

const rootReadme = readFileSync(join(REPOSITORY, "README.md"), "utf8");
const scripts = (
  JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  }
).scripts;

/** What a command printed, without the lines npm prints first naming the script it runs. */
function withoutNpmBanner(stdout: string): string {
  const lines = stdout.split("\n");
  const start = lines.findIndex((line) => line !== "" && !line.startsWith("> "));
  return lines.slice(start < 0 ? lines.length : start).join("\n");
}

describe("the examples", () => {
  it("the root README lists every folder of examples/, and each example here with its command", () => {
    const folders = readdirSync(join(REPOSITORY, "examples"), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    for (const name of folders) {
      expect(rootReadme).toContain(`examples/${name}/`);
    }
    for (const { name } of EXAMPLES) {
      expect(folders).toContain(name);
      expect(scripts).toHaveProperty(`example:${name}`);
      expect(rootReadme).toContain(`npm run example:${name}`);
    }
  });
});

for (const example of EXAMPLES) {
  const readme = `examples/${example.name}/README.md`;
  const found = commands(
    codeBlocks(readFileSync(join(REPOSITORY, readme), "utf8"), readme),
    (block) => block.ci === "example",
  );
  const missing = missingToolchains(...example.toolchains);

  describe(`examples/${example.name}`, skipWithout(missing), () => {
    let server: TestServer;
    let client: SessionStoreClient;
    /** What the README shows the --keep command printing, and the session it names. */
    const shown = found.find(({ output }) => output);

    beforeAll(async () => {
      requireTools(missing);
      server = await startTestServer();
      client = new SessionStoreClient(server.server.address);
    });

    afterAll(async () => {
      client?.close();
      await server?.close();
    });

    it("its README gives its command, and a --keep one with what it prints", () => {
      expect(found.map(({ block }) => block.language)).toEqual(["sh", "sh"]);
      expect(found[0]?.block.code).toBe(`npm run example:${example.name}\n`);
      expect(shown?.block.code).toMatch(
        new RegExp(`^npm run example:${example.name} -- --session \\S+ --keep\\n$`),
      );
    });

    /** Runs a README command as written; resolves to what it printed and the session it used. */
    async function runCommand({ block }: Command) {
      const run = () =>
        runOk("bash", ["-e", "-o", "pipefail", "-c", block.code], {
          env: {
            SESSIONSTORE_ADDRESS: server.server.address,
            // The scripted models, offline, whatever the environment has.
            OPENAI_API_KEY: undefined,
            // Unbuffered output would hide output printed out of order around the new process.
            PYTHONUNBUFFERED: undefined,
            // This checkout's Python client, wherever the venvs' editable installs of it point.
            PYTHONPATH: join(REPOSITORY, "clients/python/src"),
          },
          timeoutMs: RUN_TIMEOUT_MS,
        });
      const stdout = withoutNpmBanner(
        (await (example.buildsClient ? withBuiltClient(run) : run())).toString(),
      );
      const sessionId = /^session (\S+) on /.exec(stdout)?.[1];
      if (!sessionId) throw new Error(`the example printed no "session ... on" line:\n${stdout}`);
      return { stdout, sessionId };
    }

    /** What the README shows the --keep command printing, for `sessionId` at `address`. */
    function shownOutput(sessionId: string, address: string, kept: boolean): string {
      if (!shown?.output) throw new Error(`${readme} shows no output of a --keep command`);
      const shownId = /^session (\S+) on /.exec(shown.output.code)?.[1] ?? "";
      const text = shown.output.code.replaceAll(shownId, sessionId);
      return (kept ? text : text.replace(`kept ${sessionId}`, `deleted ${sessionId}`)).replace(
        DEFAULT_ADDRESS,
        address,
      );
    }

    it(
      "its command takes a new session, prints the turns, the resumed history and the undo, and deletes it",
      async () => {
        const command = found[0];
        if (!command) throw new Error(`${readme} gives no command`);
        const { stdout, sessionId } = await runCommand(command);
        expect(sessionId).toMatch(/^example-[a-z-]+-[0-9a-f]{8}$/);
        expect(stdout).toBe(shownOutput(sessionId, server.server.address, false));
        // What each part of the output stands for, spelled out.
        expect(stdout).toContain("[new process] resumed 8 ");
        expect(stdout).toContain('  assistant: You asked: "What is 12 * 34?"; "And 408 + 1?".\n');
        expect(stdout).toContain("undo: removed user: Which questions did I ask?\n");
        expect(await client.meta(sessionId)).toBeUndefined();
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "with --session and --keep, it prints what the README shows and the server keeps the first two turns",
      async () => {
        if (!shown) throw new Error(`${readme} shows no output of a --keep command`);
        const { stdout, sessionId } = await runCommand(shown);
        expect(stdout).toBe(shownOutput(sessionId, server.server.address, true));
        const stored = [];
        for await (const { message } of client.load(sessionId)) stored.push(message);
        expect(stored).toMatchObject(
          TURNS.flatMap((turn, n) => example.stored(turn, `call_${n + 1}`)),
        );
      },
      TEST_TIMEOUT_MS,
    );
  });
}
