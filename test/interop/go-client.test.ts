import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingToolchains, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The Go client's own tests (clients/go, `go test ./...`) against the real server: the client
 * contract of clients/README.md (a missing session, retries, the reconnecting appender, watch
 * resumption, messages refused before sending, FlushAll's failures). The Go tests stop and start
 * the server through a small HTTP endpoint of this file's (POST /stop, POST /start), which
 * restarts it on the same address and data directory, as a deployment restarts a replica.
 * Skipped without go, as test/interop/polyglot.test.ts is.
 */

const missing = missingToolchains("go");

/** The server the Go tests use, restartable on its address and data. */
class RestartableServer {
  #server: TestServer | undefined;
  readonly address: string;
  readonly dataDir: string;

  private constructor(server: TestServer) {
    this.#server = server;
    this.address = server.server.address;
    this.dataDir = server.dataDir;
  }

  static async start(): Promise<RestartableServer> {
    return new RestartableServer(await startTestServer());
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
    this.#server = undefined;
  }

  async start(): Promise<void> {
    this.#server ??= await startTestServer({ dataDir: this.dataDir, listen: this.address });
  }

  async close(): Promise<void> {
    await this.start();
    await this.#server?.close();
  }
}

/** An HTTP endpoint on loopback that stops and starts `server` as the Go tests ask. */
async function controlEndpoint(server: RestartableServer): Promise<{ url: string; http: Server }> {
  const http = createServer((request, response) => {
    const action = request.method === "POST" ? request.url : undefined;
    const run =
      action === "/stop" ? server.stop() : action === "/start" ? server.start() : undefined;
    if (!run) {
      response.writeHead(404).end();
      return;
    }
    run.then(
      () => response.writeHead(200).end(),
      (error: unknown) => response.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, http };
}

describe("the Go client", skipWithout(missing), () => {
  let server: RestartableServer;
  let control: { url: string; http: Server };

  beforeAll(async () => {
    requireTools(missing);
    server = await RestartableServer.start();
    control = await controlEndpoint(server);
  });

  afterAll(async () => {
    control?.http.close();
    await server?.close();
  });

  it("keeps the client contract against the server (go test ./... in clients/go)", async () => {
    const env = {
      SESSIONSTORE_ADDRESS: server.address,
      SESSIONSTORE_CONTROL: control.url,
      SESSIONSTORE_DATA_DIR: server.dataDir,
    };
    const result = await run("go", ["test", "-count=1", "./..."], {
      cwd: join(REPOSITORY, "clients/go"),
      env,
      timeoutMs: 150_000,
    });
    // go test reports failing tests on stdout.
    expect(result.code, `${result.stdout.toString()}${result.stderr}`).toBe(0);
  }, 180_000);
});
