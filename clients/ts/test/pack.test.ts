import { execFile } from "node:child_process";
import { copyFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import {
  compileTypeScript,
  installPackedClient,
  installRepositoryVersions,
} from "../../../test/helpers/packed-client.js";
import { makeTempDir } from "../../../test/helpers/test-server.js";
import { fixturesClosedAfterEach } from "./support.js";

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(new URL("../../../examples/agent.mjs", import.meta.url));
const fixtures = fixturesClosedAfterEach();
const tempDirs: string[] = [];
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

/** A script a user would write, in ESM or CommonJS: append two messages, load them back. */
const SMOKE = `
const client = new SessionStoreClient(process.env.ADDRESS);
const appended = await client.append("smoke", [{ hello: "world" }, '{"big":12345678901234567890}']);
const loaded = [];
for await (const entry of client.load("smoke", { raw: true })) loaded.push(entry);
console.log(JSON.stringify({ seqs: appended.seqs, loaded }));
client.close();
`;
const ESM = `import { SessionStoreClient } from "@sessionstore/client";\n${SMOKE}`;
const CJS = `const { SessionStoreClient } = require("@sessionstore/client");\n(async () => {${SMOKE}})();`;

/** TypeScript a user would write, checked against the package's declarations (ESM and CJS). */
const TYPED = `
const client = new SessionStoreClient("127.0.0.1:1", { timeoutMs: 1000 });
const appender: Appender = client.appender("s", { sync: true });
const ack: Promise<MessageAck> = appender.write({ role: "user" });
async function read(): Promise<string[]> {
  const texts: string[] = [];
  for await (const entry of client.load("s", { raw: true })) texts.push(entry.message);
  for await (const meta of client.list({ prefix: "s" })) texts.push(meta.sessionId);
  return texts;
}
export const uses = [ack, read, SessionStoreError, Status.ABORTED];
`;
const TYPED_ESM = `import { type Appender, type MessageAck, SessionStoreClient, SessionStoreError, Status } from "@sessionstore/client";\n${TYPED}`;
const TYPED_CJS = `import client_ = require("@sessionstore/client");\nconst { SessionStoreClient, SessionStoreError, Status } = client_;\ntype Appender = client_.Appender;\ntype MessageAck = client_.MessageAck;\n${TYPED}`;

/** A LangChain history from the adapter is one of langchain-core's (ESM and CommonJS). */
const LOADS_LANGCHAIN = `
const history = new SessionStoreChatMessageHistory({ sessionId: "s" });
console.log(history instanceof BaseListChatMessageHistory);
history.close();
`;
const LOADS_LANGCHAIN_ESM = `import { BaseListChatMessageHistory } from "@langchain/core/chat_history";
import { SessionStoreChatMessageHistory } from "@sessionstore/client/langchain";
${LOADS_LANGCHAIN}`;
const LOADS_LANGCHAIN_CJS = `const { BaseListChatMessageHistory } = require("@langchain/core/chat_history");
const { SessionStoreChatMessageHistory } = require("@sessionstore/client/langchain");
${LOADS_LANGCHAIN}`;

/** TypeScript using the LangChain adapter where langchain-core wants a chat message history. */
const LANGCHAIN = `
const history: BaseListChatMessageHistory = new SessionStoreChatMessageHistory({
  sessionId: "s",
  address: "127.0.0.1:1",
});
export const read: Promise<BaseMessage[]> = history.getMessages();
`;
const LANGCHAIN_ESM = `import type { BaseListChatMessageHistory } from "@langchain/core/chat_history";
import type { BaseMessage } from "@langchain/core/messages";
import { SessionStoreChatMessageHistory } from "@sessionstore/client/langchain";
${LANGCHAIN}`;
const LANGCHAIN_CJS = `import type { BaseListChatMessageHistory } from "@langchain/core/chat_history";
import type { BaseMessage } from "@langchain/core/messages";
import langchain_ = require("@sessionstore/client/langchain");
const { SessionStoreChatMessageHistory } = langchain_;
${LANGCHAIN}`;

async function node(cwd: string, args: string[], env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  return stdout;
}

describe("the packed tarball", () => {
  it("installs into an empty project, without server dependencies, and works there", async () => {
    const project = await makeTempDir("sessionstore-pack-");
    tempDirs.push(project);
    // `npm pack` runs the build (prepack) and writes the tarball.
    const { files } = await installPackedClient(project);
    expect(files).toEqual(
      expect.arrayContaining([
        "README.md",
        "package.json",
        "proto/sessionstore/v1/session_store.proto",
        "dist/esm/index.js",
        "dist/esm/index.d.ts",
        "dist/cjs/index.js",
        "dist/cjs/package.json",
        "dist/esm/openai-agents.js",
        "dist/cjs/openai-agents.js",
        "dist/esm/langchain.js",
        "dist/esm/langchain.d.ts",
        "dist/cjs/langchain.js",
        "dist/cjs/langchain.d.ts",
      ]),
    );
    expect(files.filter((file) => /^(src|test|scripts)\//.test(file))).toEqual([]);

    const installed = await readdir(join(project, "node_modules"));
    for (const serverOnly of ["pino", "grpc-health-check", "vitest", "typescript", "ts-proto"]) {
      expect(installed, serverOnly).not.toContain(serverOnly);
    }
    // The OpenAI Agents SDK adapter needs the SDK's types only: it loads without the SDK.
    expect(installed).not.toContain("@openai");
    expect(installed).not.toContain("@langchain");
    const adapter = "@sessionstore/client/openai-agents";
    const loadsAdapter = [
      [
        "--input-type=module",
        "-e",
        `console.log(typeof (await import("${adapter}")).SessionStoreSession)`,
      ],
      ["-e", `console.log(typeof require("${adapter}").SessionStoreSession)`],
    ];
    for (const args of loadsAdapter) expect(await node(project, args)).toBe("function\n");
    expect(await readdir(join(project, "node_modules/@grpc"))).not.toContain("reflection");
    expect(
      await readdir(join(project, "node_modules/@sessionstore/client/proto/sessionstore/v1")),
    ).toEqual(["session_store.proto"]);

    // The declarations type-check a user's code, imported as ESM and required as CommonJS
    // (compiled below, with the LangChain adapter's).
    await writeFile(join(project, "typed.mts"), TYPED_ESM);
    await writeFile(join(project, "typed.cts"), TYPED_CJS);

    // The LangChain adapter, once the user has installed @langchain/core: a chat message history
    // of that @langchain/core, imported as ESM and required as CommonJS, and typed as one.
    await installRepositoryVersions(project, ["@langchain/core"]);
    await writeFile(join(project, "langchain.mjs"), LOADS_LANGCHAIN_ESM);
    await writeFile(join(project, "langchain.cjs"), LOADS_LANGCHAIN_CJS);
    for (const script of ["langchain.mjs", "langchain.cjs"]) {
      expect(await node(project, [script]), script).toBe("true\n");
    }
    await writeFile(join(project, "history.mts"), LANGCHAIN_ESM);
    await writeFile(join(project, "history.cts"), LANGCHAIN_CJS);
    // One tsc run for all: it is slow.
    await compileTypeScript(project, ["typed.mts", "typed.cts", "history.mts", "history.cts"]);

    const { server } = await fixtures.start();
    const env = { ADDRESS: server.server.address };
    await writeFile(join(project, "smoke.mjs"), ESM);
    await writeFile(join(project, "smoke.cjs"), CJS);
    const expected = {
      seqs: [0, 1],
      loaded: [
        { seq: 0, message: '{"hello":"world"}' },
        { seq: 1, message: '{"big":12345678901234567890}' },
      ],
    };
    expect(JSON.parse(await node(project, ["smoke.mjs"], env))).toEqual(expected);
    expected.seqs = [2, 3];
    expected.loaded.push(
      { seq: 2, message: '{"hello":"world"}' },
      { seq: 3, message: '{"big":12345678901234567890}' },
    );
    expect(JSON.parse(await node(project, ["smoke.cjs"], env))).toEqual(expected);

    // The example agent runs against the installed package, as a new user would run it.
    await copyFile(EXAMPLE, join(project, "agent.mjs"));
    const output = await node(project, ["agent.mjs", server.server.address]);
    for (const line of [
      "appended seq 4",
      "watcher saw 5 messages",
      "loaded 5 messages; the first says: You are a helpful assistant with a calculator tool.",
      'last two, raw: seq 3 {"role":"tool","tool_call_id":"c1","result":12345715938036703}',
      "expectedSeq 2 refused: ABORTED, the session has 5",
      "meta: 5 messages, 5 durable",
      "deleted: true",
    ]) {
      expect(output).toContain(line);
    }
  }, 300_000);
});
