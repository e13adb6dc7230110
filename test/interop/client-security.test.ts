import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Issued, TestCa } from "../helpers/certificates.js";
import { missingToolchains, PYTHON, requireTools, skipWithout } from "../helpers/polyglot-tools.js";
import { REPOSITORY } from "../helpers/repository.js";
import { runOk } from "../helpers/run-program.js";
import { makeTempDir, startTestServer, type TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, type SigningKey, signingKey, token } from "../helpers/tokens.js";

/**
 * The Python (sync and asyncio) and Go clients' TLS, client certificate and token options against
 * the real server, through the interop programs (test/interop/python/scenario.py, with --aio for
 * the asyncio client, and test/interop/go) and their `calls` command: an append, then a meta, a
 * load and a watch of the session, each a call of its own. Skipped without their toolchains, as
 * test/interop/polyglot.test.ts is.
 */

const HERE = join(REPOSITORY, "test/interop");
const missing = missingToolchains("python", "go");

/** What `calls` reports when the server serves every call. */
function served(tokenCalls: number | null = null) {
  return { append: 0, meta: 1, load: ['{"n":0}'], watch: [0, '{"n":0}'], token_calls: tokenCalls };
}

/** What `calls` reports when every call fails with `code`. */
function refused(code: status) {
  return { append: code, meta: code, load: code, watch: code, token_calls: null };
}

/** What a client of `calls` presents: a CA to trust, a client certificate, tokens. */
interface Credentials {
  ca?: Issued;
  certificate?: Issued;
  tokens?: string[];
}

describe("the Python and Go clients over TLS and mTLS, with tokens", skipWithout(missing), () => {
  let workDir: string;
  let goProgram: string;
  let ca: TestCa;
  let key: SigningKey;
  /** TLS; mTLS with tenants from certificates; tokens over plaintext; tokens over TLS. */
  let servers: Record<"tls" | "mtls" | "jwt" | "tlsJwt", TestServer>;
  let clientCa: TestCa;
  let otherCa: TestCa;

  beforeAll(async () => {
    requireTools(missing);
    workDir = await makeTempDir("sessionstore-client-security-");
    goProgram = join(workDir, "interop-go");
    await runOk("go", ["build", "-o", goProgram, "."], { cwd: join(HERE, "go") });
    [ca, clientCa, otherCa, key] = await Promise.all([
      TestCa.create("test CA"),
      TestCa.create("client CA"),
      TestCa.create("another CA"),
      signingKey(),
    ]);
    const certificate = await ca.server();
    const tls = { tlsCert: certificate.certFile, tlsKey: certificate.keyFile };
    const jwks = await JwksFile.create([key]);
    servers = {
      tls: await startTestServer(tls),
      mtls: await startTestServer({ ...tls, tlsClientCa: clientCa.ca.certFile, auth: "mtls" }),
      jwt: await startTestServer(jwtSettings(jwks)),
      tlsJwt: await startTestServer({ ...tls, ...jwtSettings(jwks) }),
    };
  }, 300_000);

  afterAll(async () => {
    for (const server of Object.values(servers ?? {})) await server.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const programs = {
    python: (args: string[]) => runOk(PYTHON, [join(HERE, "python/scenario.py"), ...args]),
    // The asyncio client (sessionstore.aio), with the same options.
    "python-aio": (args: string[]) =>
      runOk(PYTHON, [join(HERE, "python/scenario.py"), "--aio", ...args]),
    go: (args: string[]) => runOk(goProgram, args),
  };

  describe.each(["python", "python-aio", "go"] as const)("%s", (language) => {
    /** Runs `calls` on `session` of `server` with `credentials`; resolves to its report. */
    async function calls(server: TestServer, session: string, credentials: Credentials = {}) {
      const args: string[] = [];
      if (credentials.ca) args.push("--ca", credentials.ca.certFile);
      if (credentials.certificate) {
        args.push(
          "--cert",
          credentials.certificate.certFile,
          "--key",
          credentials.certificate.keyFile,
        );
      }
      if (credentials.tokens) {
        // In a file, not on the command line, where a failure's message would show them.
        const file = join(workDir, `${language}-${session}.tokens`);
        await writeFile(file, credentials.tokens.join("\n"));
        args.push("--tokens", file);
      }
      const report = await programs[language]([...args, server.server.address, "calls", session]);
      return JSON.parse(report.toString());
    }

    it("connects over TLS trusting the CA given, and fails to with another CA", async () => {
      expect(await calls(servers.tls, `${language}-tls`, { ca: ca.ca })).toEqual(served());
      expect(await calls(servers.tls, `${language}-untrusted`, { ca: otherCa.ca })).toEqual(
        refused(status.UNAVAILABLE),
      );
    });

    it("presents a client certificate (mTLS): its calls are in the certificate's tenant", async () => {
      const agent = await clientCa.issue({
        commonName: "agent",
        altNames: [`URI:spiffe://example.org/tenants/acme-${language}/agents/7`],
      });
      expect(await calls(servers.mtls, "mine", { ca: ca.ca, certificate: agent })).toEqual(
        served(),
      );
      const tenant = join(servers.mtls.dataDir, "tenants", `acme-${language}`);
      expect(await readdir(tenant)).toContain("mine.jsonl");
      expect(await calls(servers.mtls, "mine", { ca: ca.ca })).toEqual(refused(status.UNAVAILABLE));
    });

    it("sends a fixed token, over plaintext to loopback; without one, every call is UNAUTHENTICATED", async () => {
      const fixed = await token(key, { tenant: `fixed-${language}` });
      expect(await calls(servers.jwt, "fixed", { tokens: [fixed] })).toEqual(served());
      const tenant = join(servers.jwt.dataDir, "tenants", `fixed-${language}`);
      expect(await readdir(tenant)).toContain("fixed.jsonl");
      expect(await calls(servers.jwt, "none")).toEqual(refused(status.UNAUTHENTICATED));
    });

    it("asks a token function before every call, over TLS, and sends what it returns", async () => {
      const tenant = { tenant: `refreshed-${language}` };
      const valid = await token(key, tenant);
      const expired = await token(key, { ...tenant, exp: Math.floor(Date.now() / 1000) - 120 });
      // In turn: the append's, the meta's (refused), the load's, the watch's.
      const tokens = [valid, expired, await token(key, tenant), await token(key, tenant)];
      expect(await calls(servers.tlsJwt, "refreshed", { ca: ca.ca, tokens })).toEqual({
        ...served(4),
        meta: status.UNAUTHENTICATED,
      });
    });
  });

  it("the Go client's unit tests pass (go test)", async () => {
    await runOk("go", ["test", "./..."], { cwd: join(REPOSITORY, "clients/go") });
  }, 120_000);

  it("the Python client's unit tests pass (unittest)", async () => {
    // This checkout's client, wherever the venv's editable install of it points.
    const env = { PYTHONPATH: join(REPOSITORY, "clients/python/src") };
    await runOk(PYTHON, ["-m", "unittest", "discover", "-s", "clients/python/tests"], { env });
  });
});
