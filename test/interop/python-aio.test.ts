import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, signingKey, token } from "../helpers/tokens.js";

/**
 * The Python asyncio client (sessionstore.aio) against the real server: clients/python/tests/
 * server_aio.py, run by unittest, uses each of its operations and error cases against a plain
 * server, and its token options against one with --auth jwt; server_sync.py checks the sync
 * client's side of the client contract (clients/README.md) the scenario's tour does not. Skipped without the Python
 * toolchain, as test/interop/polyglot.test.ts is. And the package (sync and asyncio clients)
 * type-checks with mypy --strict, as clients/python/pyproject.toml configures it.
 */

const missing = missingToolchains("python");

describe("the Python asyncio client", skipWithout(missing), () => {
  let plain: TestServer;
  let jwt: TestServer;
  let validToken: string;

  beforeAll(async () => {
    requireTools(missing);
    const key = await signingKey();
    const jwks = await JwksFile.create([key]);
    validToken = await token(key, { tenant: "python-aio" });
    [plain, jwt] = await Promise.all([startTestServer(), startTestServer(jwtSettings(jwks))]);
  }, 120_000);

  afterAll(async () => {
    await plain?.close();
    await jwt?.close();
  });

  it("passes its tests against the server (unittest, clients/python/tests/server_*.py)", async () => {
    const env = {
      // This checkout's client, wherever the venv's editable install of it points.
      PYTHONPATH: join(REPOSITORY, "clients/python/src"),
      SESSIONSTORE_ADDRESS: plain.server.address,
      SESSIONSTORE_JWT_ADDRESS: jwt.server.address,
      SESSIONSTORE_JWT_TOKEN: validToken,
    };
    const tests = join(REPOSITORY, "clients/python/tests");
    await runOk(PYTHON, ["-m", "unittest", "discover", "-s", tests, "-p", "server_*.py"], {
      env,
      timeoutMs: 90_000,
    });
  }, 120_000);

  it("type-checks with mypy --strict (clients/python/pyproject.toml)", async () => {
    // scripts/setup-polyglot.sh installs mypy and the grpcio and protobuf stubs, pinned.
    const mypy = join(dirname(PYTHON), "mypy");
    if (!existsSync(mypy)) {
      throw new Error(
        `${mypy} not found: a venv from before mypy was pinned; run scripts/setup-polyglot.sh`,
      );
    }
    await runOk(mypy, [], { cwd: join(REPOSITORY, "clients/python"), timeoutMs: 110_000 });
  }, 120_000);
});
