import { createHmac, createPublicKey } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  SessionStoreClient,
  SessionStoreError,
  Status,
  type TokenSource,
} from "../../clients/ts/src/index.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import {
  AUDIENCE,
  ISSUER,
  JwksFile,
  jwtSettings,
  type SigningKey,
  signingKey,
  token,
} from "../helpers/tokens.js";

async function refusal(promise: Promise<unknown>): Promise<SessionStoreError> {
  const error = await promise.then(
    () => expect.fail("expected the call to be refused"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  return error as SessionStoreError;
}

function base64url(value: object | string): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString(
    "base64url",
  );
}

/** A token whose header and signature are made by hand, as an attacker would. */
function handMadeToken(header: object, claims: object, sign: (input: string) => string): string {
  const input = `${base64url(header)}.${base64url(claims)}`;
  return `${input}.${sign(input)}`;
}

describe("--auth jwt", () => {
  let keys: { es: SigningKey; rsa: SigningKey; ed: SigningKey; stranger: SigningKey };
  let jwks: JwksFile;
  let server: TestServer;
  const clients: SessionStoreClient[] = [];

  function clientWith(tokenSource?: TokenSource): SessionStoreClient {
    const client = new SessionStoreClient(server.server.address, {
      ...(tokenSource === undefined ? {} : { token: tokenSource }),
      retry: { maxAttempts: 1 },
      timeoutMs: 5000,
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    const [es, rsa, ed, stranger] = await Promise.all([
      signingKey("ES256"),
      signingKey("RS256"),
      signingKey("EdDSA"),
      signingKey("ES256"),
    ]);
    keys = { es, rsa, ed, stranger };
    jwks = await JwksFile.create([es, rsa, ed]);
    server = await startTestServer(jwtSettings(jwks));
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await server?.close();
  });

  it("serves a valid token of each algorithm, in the tenant it names", async () => {
    for (const [name, key] of Object.entries({ es: keys.es, rsa: keys.rsa, ed: keys.ed })) {
      const client = clientWith(await token(key, { tenant: `team-${name}` }));
      await client.append("history", { by: name });
      const loaded = [];
      for await (const { message } of client.load("history")) loaded.push(message);
      expect(loaded).toEqual([{ by: name }]);
    }
    expect((await readdir(join(server.dataDir, "tenants"))).sort()).toEqual([
      "team-ed",
      "team-es",
      "team-rsa",
    ]);
  });

  it("refuses calls without a token, or with a malformed one, with UNAUTHENTICATED saying what to send", async () => {
    const none = await refusal(clientWith().meta("s"));
    expect(none.code).toBe(Status.UNAUTHENTICATED);
    expect(none.message).toMatch(/authorization: Bearer <JWT>/);
    const garbage = await refusal(clientWith("not-a-jwt").meta("s"));
    expect(garbage.code).toBe(Status.UNAUTHENTICATED);
    expect(garbage.message).toMatch(/not a valid signed JWT/);
  });

  it("refuses tokens expired, not yet valid, of another issuer or audience, without expiry", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ exp: now - 120 }, /expired/],
      [{ nbf: now + 600 }, /not valid yet/],
      [{ iss: "https://elsewhere.test" }, /issuer/],
      [{ aud: "another-service" }, /not meant for this server/],
      [{ exp: undefined }, /expiry/],
    ];
    for (const [claims, reason] of cases) {
      const error = await refusal(
        clientWith(await token(keys.es, { tenant: "acme", ...claims })).meta("s"),
      );
      expect(error.code, JSON.stringify(claims)).toBe(Status.UNAUTHENTICATED);
      expect(error.message).toMatch(reason);
    }
    // Within the clock skew allowed, a token just expired or just about to start still works.
    await clientWith(await token(keys.es, { tenant: "acme", exp: now - 5, nbf: now + 5 })).meta(
      "s",
    );
  });

  it("refuses a token signed by a key it does not know, without saying more about the check", async () => {
    const forged = await token({ ...keys.stranger, kid: keys.es.kid }, { tenant: "acme" });
    const unknownKey = await token(keys.stranger, { tenant: "acme" });
    for (const jwt of [forged, unknownKey]) {
      const error = await refusal(clientWith(jwt).meta("s"));
      expect(error.code).toBe(Status.UNAUTHENTICATED);
      expect(error.message).toBe(
        "UNAUTHENTICATED: the token's signature could not be verified with this server's keys",
      );
    }
  });

  it("refuses alg none and HMAC tokens keyed with its own public key (algorithm confusion)", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: ISSUER,
      aud: AUDIENCE,
      exp: now + 600,
      tenant: "acme",
      scope: "sessions:admin",
    };
    const unsigned = handMadeToken({ alg: "none", typ: "JWT" }, claims, () => "");
    // The attack: the public key, as the verifier holds it, used as an HMAC secret.
    const publicPem = createPublicKey({ key: keys.rsa.publicJwk, format: "jwk" })
      .export({ type: "spki", format: "pem" })
      .toString();
    const confused = handMadeToken({ alg: "HS256", kid: keys.rsa.kid }, claims, (input) =>
      createHmac("sha256", publicPem).update(input).digest("base64url"),
    );
    for (const jwt of [unsigned, confused]) {
      const error = await refusal(clientWith(jwt).meta("s"));
      expect(error.code).toBe(Status.UNAUTHENTICATED);
      expect(error.message).toMatch(/not a valid signed JWT|algorithm is not accepted/);
    }
  });

  it("refuses a call whose scope the token lacks with PERMISSION_DENIED naming it; admin grants all", async () => {
    const reader = clientWith(await token(keys.es, { tenant: "scoped", scope: "sessions:read" }));
    const writer = clientWith(await token(keys.es, { tenant: "scoped", scope: "sessions:write" }));
    const admin = clientWith(await token(keys.es, { tenant: "scoped", scope: "sessions:admin" }));

    const append = await refusal(reader.append("s", { n: 1 }));
    expect(append.code).toBe(Status.PERMISSION_DENIED);
    expect(append.message).toMatch(/sessions:write/);
    await writer.append("s", { n: 1 });
    const load = await refusal(writer.meta("s"));
    expect(load.code).toBe(Status.PERMISSION_DENIED);
    expect(load.message).toMatch(/sessions:read/);
    expect((await reader.meta("s"))?.messageCount).toBe(1);
    const deletion = await refusal(writer.delete("s"));
    expect(deletion.message).toMatch(/sessions:delete/);
    const stream = reader.appender("s");
    await expect(stream.write({ n: 2 })).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    expect(await admin.delete("s")).toBe(true);
  });

  it("refuses a token that names no tenant, or a tenant name the rule refuses", async () => {
    for (const tenant of [undefined, "", "../escape", ".hidden", "x".repeat(65)]) {
      const error = await refusal(clientWith(await token(keys.es, { tenant })).meta("s"));
      expect(error.code).toBe(Status.PERMISSION_DENIED);
      expect(error.message).toMatch(/"tenant" claim must name the caller's tenant/);
    }
  });

  it("asks a token callback again for every call, so a refreshed token is used", async () => {
    let asked = 0;
    const client = clientWith(async () => {
      asked++;
      return token(keys.es, { tenant: "refreshing" });
    });
    await client.meta("s");
    await client.meta("s");
    expect(asked).toBe(2);
  });

  it("uses new keys when the JWKS file changes, without dropping a stream opened before", async () => {
    const rotated = await signingKey("ES256");
    const before = clientWith(await token(keys.es, { tenant: "rotation" }));
    const appender = before.appender("rotating", { sync: true });
    const acks = [appender.write({ n: 0 })];
    await acks[0];

    await jwks.write([rotated, keys.rsa, keys.ed]);
    const after = clientWith(await token(rotated, { tenant: "rotation" }));
    const deadline = Date.now() + 10_000;
    while (
      !(await after.meta("rotating").then(
        () => true,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error("the new key was never accepted");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The removed key's tokens are refused on new calls, though verified before the rotation.
    const stale = await refusal(before.meta("rotating"));
    expect(stale.code).toBe(Status.UNAUTHENTICATED);
    for (let n = 1; n < 10; n++) acks.push(appender.write({ n }));
    await appender.close();
    expect((await Promise.all(acks)).map((ack) => ack.seq)).toEqual([...Array(10).keys()]);
    await jwks.write([keys.es, keys.rsa, keys.ed]);
  });
});

describe("--auth-tenant-claim", () => {
  it("takes the tenant from the claim it names", async () => {
    const key = await signingKey();
    const jwks = await JwksFile.create([key]);
    const server = await startTestServer({ ...jwtSettings(jwks), authTenantClaim: "org_id" });
    const client = new SessionStoreClient(server.server.address, {
      token: await token(key, { org_id: "org-42", tenant: "ignored" }),
    });
    try {
      await client.append("s", { hello: 1 });
      expect(await readdir(join(server.dataDir, "tenants"))).toEqual(["org-42"]);
    } finally {
      client.close();
      await server.close();
    }
  });
});
