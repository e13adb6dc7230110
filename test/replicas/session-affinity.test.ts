import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../clients/ts/src/index.js";
import { type Nginx, nginxBinary, startNginx } from "../helpers/nginx.js";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { Replicas } from "../helpers/replicas.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { makeTempDir } from "../helpers/test-server.js";

const INTEROP = join(REPOSITORY, "test/interop");

/**
 * The file backend behind nginx hashing on `x-session-id` (the README's second nginx block): each
 * replica keeps its sessions in its own data directory, and every call about a session reaches
 * the replica that holds it, from any client.
 */
describe(
  "file-backend replicas behind nginx, routed by x-session-id",
  skipWithReason(
    nginxBinary() ? undefined : "nginx is not installed (scripts/setup-servers.sh installs it)",
  ),
  () => {
    let dataDirs: string[];
    let replicas: Replicas;
    let nginx: Nginx;
    let client: SessionStoreClient;

    beforeAll(async () => {
      dataDirs = await Promise.all([0, 1, 2].map(() => makeTempDir("sessionstore-affinity-")));
      replicas = await Replicas.onFiles(dataDirs);
      nginx = await startNginx(replicas.addresses, "session-affinity");
      client = new SessionStoreClient(nginx.address);
    }, 60_000);

    afterAll(async () => {
      client?.close();
      await nginx?.stop();
      await replicas?.stopAll();
      for (const dir of dataDirs ?? []) await rm(dir, { recursive: true, force: true });
    });

    it("keeps each session on one replica: what is appended through the balancer loads and watches back", async () => {
      const ids = Array.from({ length: 24 }, (_, i) => `agent-${i}`);
      for (const [i, sessionId] of ids.entries()) {
        const appender = client.appender(sessionId, { sync: i % 2 === 0 });
        for (let n = 0; n < 5; n++) void appender.write({ sessionId, n });
        await appender.close();
      }
      for (const sessionId of ids) {
        const loaded = [];
        for await (const { message } of client.load(sessionId)) loaded.push(message);
        expect(loaded).toEqual(Array.from({ length: 5 }, (_, n) => ({ sessionId, n })));
        expect((await client.meta(sessionId))?.messageCount).toBe(5);
        const watched = [];
        for await (const { message } of client.watch(sessionId)) {
          watched.push(message);
          if (watched.length === 5) break;
        }
        expect(watched).toEqual(loaded);
      }
      // Each session's file is in exactly one data directory, and every replica holds some.
      const files = await Promise.all(
        dataDirs.map(async (dir) => (await readdir(dir)).filter((name) => name.endsWith(".jsonl"))),
      );
      expect(files.flat().sort()).toEqual(ids.map((id) => `${id}.jsonl`).sort());
      for (const held of files) expect(held.length).toBeGreaterThan(0);
    });

    describe("the Python and Go clients", skipWithout(missingToolchains("python", "go")), () => {
      it("append from Python and load from Go, each call routed to the session's replica", async () => {
        requireTools(missingToolchains("python", "go"));
        const work = await makeTempDir("sessionstore-affinity-go-");
        const goProgram = join(work, "interop-go");
        await runOk("go", ["build", "-o", goProgram, "."], { cwd: join(INTEROP, "go") });
        const { readFile } = await import("node:fs/promises");
        const vectors = await readFile(join(INTEROP, "messages.jsonl"));
        for (const sessionId of ["py-0", "py-1", "py-2", "py-3"]) {
          await runOk(
            PYTHON,
            [join(INTEROP, "python/scenario.py"), nginx.address, "append", sessionId],
            {
              input: vectors,
            },
          );
          expect(await runOk(goProgram, [nginx.address, "load", sessionId])).toEqual(vectors);
        }
        await rm(work, { recursive: true, force: true });
      }, 300_000);
    });
  },
);
