import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  missingToolchains,
  PYTHON_OPENAI_AGENTS,
  requireTools,
  skipWithout,
} from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The OpenAI Agents SDK adapter (sessionstore.integrations.openai_agents.SessionStoreSession):
 * its Python tests run the real SDK, pinned by scripts/setup-polyglot.sh in
 * .tools/venv-openai-agents, with the SDK's scripted model, against this real server.
 */

const missing = missingToolchains("openaiAgents");

describe("OpenAI Agents SDK session (Python) against the server", skipWithout(missing), () => {
  let server: TestServer;

  beforeAll(async () => {
    requireTools(missing);
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("keeps a Runner's turns, tool calls included, and every Session method works", async () => {
    const env = {
      SESSIONSTORE_ADDRESS: server.server.address,
      // This checkout's client, wherever the venv's editable install of it points.
      PYTHONPATH: join(REPOSITORY, "clients/python/src"),
    };
    await runOk(
      PYTHON_OPENAI_AGENTS,
      [join(REPOSITORY, "clients/python/tests_integrations/test_openai_agents.py")],
      { env },
    );
  }, 120_000);
});
