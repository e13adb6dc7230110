import { copyFile, readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient, SessionStoreError, Status } from "../../clients/ts/src/index.js";
import type { Config } from "../../src/config.js";
import { type Issued, TestCa } from "../helpers/certificates.js";
import { makeTempDir, startTestServer, type TestServer } from "../helpers/test-server.js";

/** A client of `server` over TLS that gives up at once (no retries) when it cannot connect. */
function tlsClient(server: TestServer, files: { ca: Issued; client?: Issued }): SessionStoreClient {
  return new SessionStoreClient(server.server.address, {
    credentials: {
      rootCerts: files.ca.cert,
      ...(files.client ? { certChain: files.client.cert, privateKey: files.client.key } : {}),
    },
    retry: { maxAttempts: 1 },
    timeoutMs: 5000,
  });
}

/** Appends one message and reads the session back, or fails as the client does. */
async function roundTrip(
  client: SessionStoreClient,
  sessionId = "tls-session",
): Promise<unknown[]> {
  await client.append(sessionId, { hello: "tls" });
  const loaded = [];
  for await (const { message } of client.load(sessionId)) loaded.push(message);
  return loaded;
}

async function refusal(promise: Promise<unknown>): Promise<SessionStoreError> {
  const error = await promise.then(
    () => expect.fail("expected the call to fail"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  return error as SessionStoreError;
}

/** Copies `issued` to `directory`/server.pem and server.key, each replaced in one rename. */
async function install(issued: Issued, directory: string): Promise<{ cert: string; key: string }> {
  const cert = join(directory, "server.pem");
  const key = join(directory, "server.key");
  for (const [from, to] of [
    [issued.keyFile, key],
    [issued.certFile, cert],
  ] as const) {
    await copyFile(from, `${to}.new`);
    await rename(`${to}.new`, to);
  }
  return { cert, key };
}

describe("TLS", () => {
  let ca: TestCa;
  let otherCa: TestCa;
  const servers: TestServer[] = [];
  const clients: SessionStoreClient[] = [];

  async function serve(overrides: Partial<Config>): Promise<TestServer> {
    const server = await startTestServer(overrides);
    servers.push(server);
    return server;
  }

  function client(server: TestServer, files: { ca: Issued; client?: Issued }) {
    const made = tlsClient(server, files);
    clients.push(made);
    return made;
  }

  beforeAll(async () => {
    [ca, otherCa] = await Promise.all([TestCa.create("test CA"), TestCa.create("another CA")]);
  });

  afterAll(async () => {
    for (const made of clients) made.close();
    for (const server of servers) await server.close();
  });

  it("serves a client that trusts its CA, and no client that does not, nor a plaintext one", async () => {
    const certificate = await ca.server();
    const server = await serve({ tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
    expect(await roundTrip(client(server, { ca: ca.ca }))).toEqual([{ hello: "tls" }]);

    const untrusting = await refusal(roundTrip(client(server, { ca: otherCa.ca })));
    expect(untrusting.code).toBe(Status.UNAVAILABLE);
    const plaintext = new SessionStoreClient(server.server.address, {
      credentials: "insecure",
      retry: { maxAttempts: 1 },
      timeoutMs: 5000,
    });
    clients.push(plaintext);
    expect((await refusal(roundTrip(plaintext))).code).toBe(Status.UNAVAILABLE);
  });

  it("is refused by clients when its certificate has expired", async () => {
    const expired = await ca.server(-1);
    const server = await serve({ tlsCert: expired.certFile, tlsKey: expired.keyFile });
    expect((await refusal(roundTrip(client(server, { ca: ca.ca })))).code).toBe(Status.UNAVAILABLE);
  });

  it("refuses to start with a key that is not the certificate's, naming the files", async () => {
    const one = await ca.server();
    const other = await ca.server();
    await expect(startTestServer({ tlsCert: one.certFile, tlsKey: other.keyFile })).rejects.toThrow(
      /cannot use the TLS certificate and key .*server|key values mismatch|cert-/,
    );
  });

  describe("mTLS (--tls-client-ca, --auth mtls)", () => {
    let clientCa: TestCa;
    let server: TestServer;

    beforeAll(async () => {
      clientCa = await TestCa.create("client CA");
      const certificate = await ca.server();
      server = await serve({
        tlsCert: certificate.certFile,
        tlsKey: certificate.keyFile,
        tlsClientCa: clientCa.ca.certFile,
        auth: "mtls",
      });
    });

    it("serves a client certificate of its CA, in the tenant of its SPIFFE ID", async () => {
      const agent = await clientCa.issue({
        commonName: "agent",
        altNames: ["URI:spiffe://example.org/tenants/acme/agents/7"],
      });
      expect(await roundTrip(client(server, { ca: ca.ca, client: agent }), "mine")).toEqual([
        { hello: "tls" },
      ]);
      expect(await readdir(join(server.dataDir, "tenants", "acme"))).toContain("mine.jsonl");
      expect(await readdir(server.dataDir)).not.toContain("mine.jsonl");
    });

    it("takes the namespace of an Istio SPIFFE ID, or the subject O, as the tenant", async () => {
      const istio = await clientCa.issue({
        commonName: "istio",
        altNames: ["URI:spiffe://cluster.local/ns/team-a/sa/agent"],
      });
      const plain = await clientCa.issue({ commonName: "agent-9", organization: "globex" });
      await roundTrip(client(server, { ca: ca.ca, client: istio }), "by-namespace");
      await roundTrip(client(server, { ca: ca.ca, client: plain }), "by-organization");
      expect(await readdir(join(server.dataDir, "tenants", "team-a"))).toContain(
        "by-namespace.jsonl",
      );
      expect(await readdir(join(server.dataDir, "tenants", "globex"))).toContain(
        "by-organization.jsonl",
      );
    });

    it("refuses a certificate that names no tenant with PERMISSION_DENIED", async () => {
      const anonymous = await clientCa.issue({ commonName: "nobody" });
      const error = await refusal(roundTrip(client(server, { ca: ca.ca, client: anonymous })));
      expect(error.code).toBe(Status.PERMISSION_DENIED);
      expect(error.message).toMatch(/names no tenant/);
    });

    it("refuses clients without a certificate, with one of another CA, or an expired one", async () => {
      const stranger = await otherCa.issue({ commonName: "x", organization: "acme" });
      const expired = await clientCa.issue({ commonName: "old", organization: "acme", days: -1 });
      for (const files of [
        { ca: ca.ca },
        { ca: ca.ca, client: stranger },
        { ca: ca.ca, client: expired },
      ]) {
        const error = await refusal(roundTrip(client(server, files)));
        expect(error.code).toBe(Status.UNAVAILABLE);
      }
    });
  });

  it("uses a new certificate for new connections when its files change, without dropping open streams", async () => {
    const directory = await makeTempDir("sessionstore-tls-reload-");
    const paths = await install(await ca.server(), directory);
    const server = await serve({ tlsCert: paths.cert, tlsKey: paths.key });
    const before = client(server, { ca: ca.ca });
    const appender = before.appender("rotating", { sync: true });
    const acks = [appender.write({ n: 0 })];
    await acks[0];

    const nextCa = await TestCa.create("next CA");
    await install(await nextCa.server(), directory);
    // The server checks its files every second: wait until a client of the new CA connects.
    const after = client(server, { ca: nextCa.ca });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const outcome = await roundTrip(after, "after-rotation").then(
        () => "served",
        (error: unknown) => error,
      );
      if (outcome === "served") break;
      if (Date.now() > deadline) throw outcome;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The stream opened before goes on, on its connection of the old certificate.
    for (let n = 1; n < 20; n++) acks.push(appender.write({ n }));
    await appender.close();
    expect((await Promise.all(acks)).map((ack) => ack.seq)).toEqual([...Array(20).keys()]);
    // New connections trusting only the old CA are refused now.
    const stale = client(server, { ca: ca.ca });
    expect((await refusal(roundTrip(stale, "stale"))).code).toBe(Status.UNAVAILABLE);
  });
});
