import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../gen/sessionstore/v1/session_store.js";
import { TestCa } from "../helpers/certificates.js";
import { sessionstore } from "../helpers/operator-cli.js";
import { append, startTestServer, type TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, signingKey, token } from "../helpers/tokens.js";

const MESSAGE = '{"role":"user","content":"hi"}';

describe("sessionstore's connection options: TLS and tokens as the clients take them", {
  timeout: 120_000,
}, () => {
  let ca: TestCa;
  let tls: TestServer;
  let jwt: TestServer;
  let valid: string;
  let stranger: string;

  beforeAll(async () => {
    ca = await TestCa.create();
    const certificate = await ca.server();
    tls = await startTestServer({ tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
    const [key, other] = await Promise.all([signingKey(), signingKey()]);
    jwt = await startTestServer(jwtSettings(await JwksFile.create([key])));
    valid = await token(key, { tenant: "acme" });
    stranger = await token(other, { tenant: "acme" });
    const client = new SessionStoreClient(tls.server.address, credentials.createSsl(ca.ca.cert));
    await append(client, [{ sessionId: "over-tls", messages: [MESSAGE] }]);
    client.close();
  });
  afterAll(async () => {
    await tls?.close();
    await jwt?.close();
  });

  it("--tls-ca speaks TLS to a loopback server that serves it; plaintext there fails (exit 5)", async () => {
    const address = tls.server.address;
    const run = await sessionstore(address, ["--tls-ca", ca.ca.certFile, "cat", "over-tls"]);
    expect(run).toMatchObject({ code: 0, stdout: `${MESSAGE}\n` });
    // The option after the command works too, and from the environment the address.
    expect(
      (await sessionstore(address, ["cat", "over-tls", "--tls-ca", ca.ca.certFile])).code,
    ).toBe(0);
    const plaintext = await sessionstore(address, ["cat", "over-tls"]);
    expect(plaintext.code).toBe(5);
    expect((await sessionstore(address, ["--tls-cert", ca.ca.certFile, "ls"])).code).toBe(2);
  });

  it("--token and SESSIONSTORE_TOKEN are sent as bearer tokens; refused ones are exit 6 and never printed", async () => {
    const address = jwt.server.address;
    const none = await sessionstore(address, ["ls"]);
    expect(none.code).toBe(6);
    const withFlag = await sessionstore(address, ["--token", valid, "ls", "--json"]);
    expect(withFlag).toMatchObject({ code: 0, stdout: "[]\n" });
    const fromEnv = await sessionstore(address, ["ls", "--json"], {
      env: { SESSIONSTORE_TOKEN: valid },
    });
    expect(fromEnv.code).toBe(0);
    const refused = await sessionstore(address, ["meta", "x"], {
      env: { SESSIONSTORE_TOKEN: stranger },
    });
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/^sessionstore meta: .*\(UNAUTHENTICATED\)\n$/);
    for (const output of [refused.stderr, refused.stdout, withFlag.stderr, none.stderr]) {
      expect(output).not.toContain(stranger);
      expect(output).not.toContain(valid);
    }
    const help = await sessionstore(address, ["--help"], { env: { SESSIONSTORE_TOKEN: valid } });
    expect(help.stdout).not.toContain(valid);
  });
});
