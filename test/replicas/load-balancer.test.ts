import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import { type Nginx, nginxBinary, startNginx } from "../helpers/nginx.js";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { testDatabases } from "../helpers/postgres.js";
import { Replicas } from "../helpers/replicas.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { makeTempDir } from "../helpers/test-server.js";

const databases = testDatabases();
const missing =
  databases.missing ??
  (nginxBinary() ? undefined : "nginx is not installed (scripts/setup-servers.sh installs it)");
const INTEROP = join(REPOSITORY, "test/interop");

/** How many calls each replica served, from its debug log ("rpc finished" lines). */
function callsServed(replicas: Replicas): number[] {
  return replicas.all.map(
    (replica) => replica.logs.filter((entry) => entry.msg === "rpc finished").length,
  );
}

/**
 * Three replicas on one PostgreSQL behind a real gRPC load balancer (nginx, `grpc_pass`,
 * round-robin per call), used by the clients unchanged.
 */
describe("behind nginx, round-robin over three replicas", skipWithReason(missing), () => {
  let replicas: Replicas;
  let nginx: Nginx;
  let client: SessionStoreClient;

  beforeAll(async () => {
    replicas = await Replicas.start(3, await databases.create(), ["--log-level", "debug"]);
    nginx = await startNginx(replicas.addresses);
    client = new SessionStoreClient(nginx.address);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await nginx?.stop();
    await replicas?.stopAll();
  });

  it("serves the TypeScript client's appender, Load, Watch and List, spreading calls over every replica", async () => {
    const before = callsServed(replicas);
    const watching = (async () => {
      const seen: unknown[] = [];
      for await (const { message } of client.watch("balanced")) {
        seen.push(message);
        if (seen.length === 300) break;
      }
      return seen;
    })();
    const appender = client.appender("balanced", { sync: true });
    const acks = [];
    for (let n = 0; n < 300; n++) {
      await appender.ready();
      acks.push(appender.write({ n }));
    }
    await appender.close();
    expect((await Promise.all(acks)).map((ack) => ack.seq)).toEqual([...Array(300).keys()]);
    const expected = Array.from({ length: 300 }, (_, n) => ({ n }));
    expect(await watching).toEqual(expected);
    const loaded = [];
    for await (const { message } of client.load("balanced")) loaded.push(message);
    expect(loaded).toEqual(expected);
    for (let i = 0; i < 9; i++) {
      await client.appender(`listed-${i}`).write({ i });
    }
    const listed = [];
    for await (const meta of client.list({ prefix: "listed-", pageSize: 4 }))
      listed.push(meta.sessionId);
    expect(listed).toEqual(Array.from({ length: 9 }, (_, i) => `listed-${i}`));
    // Unary calls are balanced one by one: each replica served some.
    for (let i = 0; i < 12; i++) await client.meta("balanced");
    const served = callsServed(replicas).map((count, index) => count - (before[index] ?? 0));
    for (const count of served) expect(count).toBeGreaterThan(0);
  });

  it("carries an Append stream past any total size: one stream, many megabytes", async () => {
    // nginx limits a request body's total (client_max_body_size), and an Append stream is one
    // request: the README's configuration lifts the limit so a stream lives as long as its agent.
    const appender = client.appender("long-stream");
    const padding = "x".repeat(256 << 10);
    const acks = [];
    for (let n = 0; n < 100; n++) {
      await appender.ready();
      acks.push(appender.write({ n, padding }));
    }
    await appender.close();
    expect((await Promise.all(acks)).at(-1)?.seq).toBe(99);
    expect((await client.meta("long-stream"))?.messageCount).toBe(100);
  });

  describe("the Python and Go clients", skipWithout(missingToolchains("python", "go")), () => {
    let workDir: string;
    let goProgram: string;

    beforeAll(async () => {
      requireTools(missingToolchains("python", "go"));
      workDir = await makeTempDir("sessionstore-balanced-");
      goProgram = join(workDir, "interop-go");
      await runOk("go", ["build", "-o", goProgram, "."], { cwd: join(INTEROP, "go") });
    }, 300_000);

    afterAll(async () => {
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    it("append from Python and load from Go through the balancer, byte for byte", async () => {
      const vectors = await readFile(join(INTEROP, "messages.jsonl"));
      await runOk(
        PYTHON,
        [join(INTEROP, "python/scenario.py"), nginx.address, "append", "via-nginx"],
        {
          input: vectors,
        },
      );
      const loaded = await runOk(goProgram, [nginx.address, "load", "via-nginx"]);
      expect(loaded).toEqual(vectors);
    });
  });
});
