import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { loadAll, startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The LangChain adapter of the Python client (sessionstore.integrations.langchain) against the
 * real server, through langchain-core itself (pinned by scripts/setup-polyglot.sh):
 * test/interop/python/langchain_history.py round-trips every kind of message, runs a scripted
 * model over several turns with a tool call in RunnableWithMessageHistory, clears, and keeps
 * sessions apart.
 */

const missing = missingToolchains("python", "langchain");
const SCRIPT = "test/interop/python/langchain_history.py";
/** The test cases in SCRIPT: all must run, none be skipped. */
const CASES = 12;

describe("LangChain chat message history (Python) against the server", skipWithout(missing), () => {
  let server: TestServer;

  beforeAll(async () => {
    requireTools(missing);
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("passes its unittest suite with langchain-core's RunnableWithMessageHistory and fake model", async () => {
    const ran = await run(PYTHON, [SCRIPT, "-v"], {
      env: {
        // This checkout's client, wherever the venv's editable install of it points.
        PYTHONPATH: join(REPOSITORY, "clients/python/src"),
        SESSIONSTORE_ADDRESS: server.server.address,
        SESSIONSTORE_PREFIX: "lc",
      },
      timeoutMs: 120_000,
    });
    // unittest's report is the message when it fails.
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toContain(`Ran ${CASES} tests`);
    expect(ran.stderr).not.toMatch(/skipped/);
    // Another client reads the turns in LangChain's serialized form, the tool call included.
    const { messages } = await loadAll(server.client, "lc-chain");
    const stored = messages.map((text) => JSON.parse(text));
    expect(stored.map((message) => message.type)).toEqual([
      "human",
      "ai",
      "tool",
      "ai",
      "human",
      "ai",
    ]);
    expect(stored[1].data.tool_calls).toEqual([
      { name: "weather", args: { city: "Paris" }, id: "call_1", type: "tool_call" },
    ]);
    expect(stored[2].data).toMatchObject({ tool_call_id: "call_1", content: "18°C" });
  }, 180_000);
});
