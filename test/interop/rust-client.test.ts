import { readFileSync } from "node:fs";
import { access, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCa } from "../helpers/certificates.js";
import { codeBlocks } from "../helpers/markdown-code-blocks.js";
import { missingToolchains, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { makeTempDir, startTestServer, type TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, signingKey, token } from "../helpers/tokens.js";

/**
 * The Rust client (clients/rust, crate sessionstore-client): its cargo tests (clients/rust/tests)
 * against real servers, plaintext, TLS with tokens and mTLS, named by environment variables; a
 * watch across a server restart (tests/restart.rs, which this side restarts); and the README's
 * quick start, which is examples/quickstart.rs. Skipped without cargo, as
 * test/interop/polyglot.test.ts is.
 */

const CRATE = join(REPOSITORY, "clients/rust");
const CARGO = ["--locked", "--all-features", "--manifest-path", join(CRATE, "Cargo.toml")];
const README = readFileSync(join(CRATE, "README.md"), "utf8");
const missing = missingToolchains("cargo");

/** Runs cargo with `args`; rejects with what it printed (cargo test reports failures on stdout). */
async function cargo(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000) {
  const result = await run("cargo", [...args.slice(0, 1), ...CARGO, ...args.slice(1)], {
    env,
    timeoutMs,
  });
  if (result.code !== 0) {
    throw new Error(
      `cargo ${args.join(" ")} exited ${result.code ?? result.signal}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout.toString();
}

it("the crate's copy of proto/ is byte for byte the repository's (the published crate has only its own folder)", () => {
  const file = "sessionstore/v1/session_store.proto";
  const vendored = readFileSync(join(CRATE, "proto", file));
  expect(
    vendored.equals(readFileSync(join(REPOSITORY, "proto", file))),
    `copy proto/${file} to clients/rust/proto/`,
  ).toBe(true);
});

it("the README's quick start is examples/quickstart.rs, and says what it prints", () => {
  const blocks = codeBlocks(README, "clients/rust/README.md");
  const quickstart = blocks.find((block) => block.language === "rust");
  expect(quickstart?.code).toBe(readFileSync(join(CRATE, "examples/quickstart.rs"), "utf8"));
});

describe("the Rust client against the real server", skipWithout(missing), () => {
  let workDir: string;
  let servers: TestServer[] = [];
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    requireTools(missing);
    workDir = await makeTempDir("sessionstore-rust-client-");
    const [ca, otherCa, key] = await Promise.all([
      TestCa.create("test CA"),
      TestCa.create("another CA"),
      signingKey(),
    ]);
    const certificate = await ca.server();
    const tls = { tlsCert: certificate.certFile, tlsKey: certificate.keyFile };
    const client = await ca.issue({
      commonName: "agent",
      altNames: ["URI:spiffe://example.org/tenants/acme-rust/agents/7"],
    });
    const tokenFile = join(workDir, "token");
    // In a file, not in the environment or on a command line, where a failure would show it.
    await writeFile(tokenFile, await token(key, { tenant: "rust" }));
    const jwks = await JwksFile.create([key]);
    const plain = await startTestServer();
    const tlsJwt = await startTestServer({ ...tls, ...jwtSettings(jwks) });
    const mtls = await startTestServer({ ...tls, tlsClientCa: ca.ca.certFile, auth: "mtls" });
    servers = [plain, tlsJwt, mtls];
    env = {
      SESSIONSTORE_ADDRESS: plain.server.address,
      SESSIONSTORE_TLS_ADDRESS: tlsJwt.server.address,
      SESSIONSTORE_MTLS_ADDRESS: mtls.server.address,
      SESSIONSTORE_MTLS_SESSION: "mine",
      SESSIONSTORE_CA_FILE: ca.ca.certFile,
      SESSIONSTORE_OTHER_CA_FILE: otherCa.ca.certFile,
      SESSIONSTORE_CLIENT_CERT_FILE: client.certFile,
      SESSIONSTORE_CLIENT_KEY_FILE: client.keyFile,
      SESSIONSTORE_TOKEN_FILE: tokenFile,
    };
  }, 300_000);

  afterAll(async () => {
    // Every server first: the restarted one shares its predecessor's data directory, which
    // closing that one removes.
    for (const server of servers) await server.stop();
    for (const server of servers) await server.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("cargo test passes: calls, errors, watch, TLS, tokens, mTLS, motosan's SessionStore", async () => {
    await cargo(["test"], env, 900_000);
    // The mTLS test's session is in the tenant its certificate names.
    const mtls = servers[2] as TestServer;
    await access(join(mtls.dataDir, "tenants", "acme-rust", "mine.jsonl"));
  }, 900_000);

  it("a watch goes on from the next seq after the server restarts", async () => {
    const first = await startTestServer();
    servers.push(first);
    const signal = join(workDir, "restart-signal");
    const test = cargo(["test", "--test", "restart", "--", "--ignored"], {
      ...env,
      SESSIONSTORE_ADDRESS: first.server.address,
      SESSIONSTORE_RESTART_SIGNAL: signal,
    });
    const watched = (async () => {
      await expect
        .poll(
          () =>
            access(signal).then(
              () => true,
              () => false,
            ),
          { timeout: 600_000 },
        )
        .toBe(true);
    })();
    await Promise.race([watched, test]);
    await watched;
    await first.stop();
    const second = await startTestServer({ dataDir: first.dataDir, listen: first.server.address });
    servers.push(second);
    await writeFile(`${signal}.restarted`, "");
    await test;
  }, 600_000);

  it("the README's quick start runs (cargo run --example quickstart), printing what it shows", async () => {
    const server = await startTestServer({ flushIntervalMs: 600_000 });
    servers.push(server);
    const stdout = await cargo(["run", "--quiet", "--example", "quickstart"], {
      SESSIONSTORE_ADDRESS: server.server.address,
    });
    const output = codeBlocks(README, "clients/rust/README.md").find(
      (block) => block.language === "text",
    );
    expect(stdout).toBe(output?.code);
  }, 600_000);
});
