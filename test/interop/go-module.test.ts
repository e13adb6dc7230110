import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingToolchains, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The Go client as it will be published (module github.com/sessionstore/sessionstore/clients/go,
 * released as tags clients/go/vX.Y.Z): scripts/go-module-proxy lays clients/go out as a module
 * proxy serves it, its zip made by golang.org/x/mod/zip (which refuses what a module zip may not
 * hold), and a new module outside the repository `go get`s it from there, with no replace
 * directive, then builds and runs a program against the real server. Its dependencies come from
 * the local module cache, else proxy.golang.org. Skipped without go.
 */

const MODULE = "github.com/sessionstore/sessionstore/clients/go";
const VERSION = "v0.1.0";

const PROGRAM = `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	sessionstore "${MODULE}"
)

func main() {
	ctx := context.Background()
	client, err := sessionstore.New(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if _, ok, err := client.Meta(ctx, "fetched"); err != nil || ok {
		log.Fatalf("Meta of a new session: %v, %v", ok, err)
	}
	appender, err := client.Appender(ctx, "fetched")
	if err != nil {
		log.Fatal(err)
	}
	ack, err := appender.Append([]json.RawMessage{json.RawMessage(\`{"from":"go get"}\`)})
	if err != nil {
		log.Fatal(err)
	}
	if err := appender.Close(); err != nil {
		log.Fatal(err)
	}
	stored, err := client.Load(ctx, "fetched")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ack.FirstSeq, len(stored), string(stored[0].JSON))
}
`;

const missing = missingToolchains("go");

describe("the Go client's module", skipWithout(missing), () => {
  let server: TestServer;
  let work: string;

  beforeAll(async () => {
    requireTools(missing);
    server = await startTestServer();
    work = await mkdtemp(join(tmpdir(), "sessionstore-go-module-"));
  });

  afterAll(async () => {
    await server?.close();
    if (work) {
      // The module cache's files are read-only, as the go command leaves them.
      await runOk("chmod", ["-R", "u+w", work]);
      await rm(work, { recursive: true, force: true });
    }
  });

  it(`is fetched by go get ${MODULE}@${VERSION} from a module proxy, and works`, async () => {
    const proxy = join(work, "proxy");
    await runOk(
      "go",
      [
        "run",
        ".",
        "-dir",
        join(REPOSITORY, "clients/go"),
        "-module",
        MODULE,
        "-version",
        VERSION,
        "-out",
        proxy,
      ],
      {
        cwd: join(REPOSITORY, "scripts/go-module-proxy"),
      },
    );
    const probe = join(work, "probe");
    await runOk("mkdir", [probe]);
    await writeFile(join(probe, "main.go"), PROGRAM);
    // A module cache of its own, so that no earlier v0.1.0 is taken from the usual one; the
    // usual one's downloads serve the dependencies, as a proxy would, before proxy.golang.org.
    const cache = execFileSync("go", ["env", "GOMODCACHE"]).toString().trim();
    const env = {
      GOPROXY: `file://${proxy},file://${cache}/cache/download,https://proxy.golang.org`,
      GONOSUMDB: MODULE,
      // -trimpath: the build cache then serves the dependencies compiled from another module
      // cache too (their paths are not in what it hashes).
      GOFLAGS: "-mod=mod -trimpath",
      GOWORK: "off",
      GOMODCACHE: join(work, "modcache"),
    };
    await runOk("go", ["mod", "init", "example.com/probe"], { cwd: probe, env });
    await runOk("go", ["get", `${MODULE}@${VERSION}`], { cwd: probe, env });
    await runOk("go", ["build", "-o", "probe", "."], { cwd: probe, env });
    const output = await runOk(join(probe, "probe"), [server.server.address]);
    expect(output.toString()).toBe('0 1 {"from":"go get"}\n');
  }, 180_000);
});
