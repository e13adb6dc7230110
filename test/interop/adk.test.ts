import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  missingToolchains,
  PYTHON_ADK,
  requireTools,
  skipWithout,
} from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer, unaryRpcs } from "../helpers/test-server.js";

/**
 * Google ADK's session service (sessionstore.integrations.adk.SessionStoreSessionService): its
 * Python tests and the example agent (examples/adk/agent.py) run the real ADK, pinned by
 * scripts/setup-polyglot.sh in .tools/venv-adk, with scripted models, against this real server.
 */

const missing = missingToolchains("adk");

describe("Google ADK session service (Python) against the server", skipWithout(missing), () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    requireTools(missing);
    server = await startTestServer();
    env = {
      SESSIONSTORE_ADDRESS: server.server.address,
      // This checkout's client, wherever the venv's editable install of it points.
      PYTHONPATH: join(REPOSITORY, "clients/python/src"),
      // The example's model is Gemini when a key is set: the tests run offline.
      GOOGLE_API_KEY: "",
    };
  });

  afterAll(async () => {
    await server?.close();
  });

  it("behaves as ADK's own services do, keeps a Runner's turns and keeps concurrent writers apart", async () => {
    await runOk(PYTHON_ADK, [join(REPOSITORY, "clients/python/tests_integrations/test_adk.py")], {
      env,
    });
  }, 180_000);

  it("runs the example agent, which reads its session back through another service", async () => {
    const stdout = (
      await runOk("npm", ["run", "--silent", "example:adk"], { env, cwd: REPOSITORY })
    ).toString();
    const sessionId = /^session (chat-[0-9a-f]{8}) on /.exec(stdout)?.[1];
    expect(sessionId, stdout).toBeDefined();
    expect(stdout.split("\n").slice(1)).toEqual([
      "user: What is the weather in Paris?",
      "agent: It is sunny, 24 °C in Paris.",
      "user: What did I ask?",
      "agent: You asked: What is the weather in Paris?",
      "read back: 6 events",
      "  user: 'What is the weather in Paris?'",
      "  weather: calls get_weather({'city': 'Paris'})",
      "  weather: returns {'city': 'Paris', 'forecast': 'sunny, 24 °C'}",
      "  weather: 'It is sunny, 24 °C in Paris.'",
      "  user: 'What did I ask?'",
      "  weather: 'You asked: What is the weather in Paris?'",
      "state: user:last_city=Paris, app:units=metric",
      `stored as adk:s@weather-example@alice@${sessionId}`,
      "",
    ]);
    // Without --keep it deletes the session it made (the user's and app's state stay).
    const listed = await unaryRpcs(server.client).list({ prefix: "adk:s@weather-example@" });
    expect(listed.sessions.map((meta) => meta.sessionId)).toEqual([]);
    const states = await unaryRpcs(server.client).list({
      labelSelector: "adk.sessionstore.dev/app=weather-example",
    });
    expect(states.sessions.map((meta) => meta.sessionId).sort()).toEqual([
      "adk:a@weather-example",
      "adk:u@weather-example@alice",
    ]);
  }, 120_000);
});
