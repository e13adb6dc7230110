import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import { makeTempDir } from "./test-server.js";

export const ISSUER = "https://issuer.test";
export const AUDIENCE = "sessionstore";

type Algorithm = "RS256" | "ES256" | "EdDSA";

/** A signing key of a test issuer, with its public JWK. */
export interface SigningKey {
  kid: string;
  alg: Algorithm;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  publicJwk: JWK;
}

let keys = 0;

export async function signingKey(alg: Algorithm = "ES256"): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `key-${++keys}`;
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

export interface TokenClaims extends JWTPayload {
  tenant?: string;
  scope?: string;
}

/**
 * A JWT signed by `key` for the test issuer and audience, valid for an hour, with `claims`
 * (which may override any of those).
 */
export function token(key: SigningKey, claims: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "agent",
    iat: now,
    exp: now + 3600,
    scope: "sessions:read sessions:write",
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .sign(key.privateKey);
}

/** A JWKS file in a temp directory, rewritten in one rename. */
export class JwksFile {
  private constructor(readonly path: string) {}

  static async create(keys: SigningKey[]): Promise<JwksFile> {
    const file = new JwksFile(join(await makeTempDir("sessionstore-jwks-"), "jwks.json"));
    await file.write(keys);
    return file;
  }

  async write(keys: SigningKey[]): Promise<void> {
    await writeFile(`${this.path}.new`, JSON.stringify({ keys: keys.map((key) => key.publicJwk) }));
    await rename(`${this.path}.new`, this.path);
  }
}

/** The settings of a server that takes tokens of the test issuer, with keys from `jwks`. */
export function jwtSettings(jwks: JwksFile) {
  return {
    auth: "jwt" as const,
    authJwks: jwks.path,
    authIssuer: ISSUER,
    authAudience: AUDIENCE,
  };
}
