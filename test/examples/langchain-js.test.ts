import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import { withBuiltClient } from "../helpers/packed-client.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * examples/langchain-js/agent.mjs, run the way its README says (`npm run example:langchain-js` at the
 * repository's root, SESSIONSTORE_ADDRESS naming the server), against a real server: its
 * tool-calling turns are recorded, and a new history resumes them from the server.
 */
describe("the LangChain.js example agent", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("npm run example:langchain-js records the turns, resumes them, and deletes the session", async () => {
    // The command builds clients/ts: not while another test builds it too.
    const run = () =>
      runOk("npm", ["run", "--silent", "example:langchain-js"], {
        env: { SESSIONSTORE_ADDRESS: server.server.address },
        timeoutMs: 240_000,
      });
    const stdout = (await withBuiltClient(run)).toString();
    const lines = [
      "user: What is 12345679 × 81?",
      "  tool call: multiply",
      "assistant: 12345679 × 81 = 999999999.",
      "user: What did I ask?",
      "assistant: You asked me to multiply 12345679 by 81.",
      "resumed: 6 messages: human ai tool ai human ai",
      "the tool's result, as stored: 999999999",
      "meta: 6 messages",
      "deleted: true",
    ];
    expect(stdout.trimEnd().split("\n").slice(1)).toEqual(lines);
    const sessionId = /^session (example-langchain-\d+) on 127\.0\.0\.1:\d+\n/.exec(stdout)?.[1];
    expect(sessionId, stdout).toBeDefined();
    // Deleted, as it said.
    const client = new SessionStoreClient(server.server.address);
    try {
      expect(await client.meta(sessionId ?? "")).toBeUndefined();
    } finally {
      client.close();
    }
  }, 480_000);
});
