import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call.js";
import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../errors.js";
import { isValidTenant, TENANT_RULE } from "../tenant.js";
import {
  type Access,
  type Identity,
  SCOPES,
  type Scope,
  tenantIfGranted,
  unauthenticated,
} from "./access.js";
import { WatchedFiles } from "./watched-files.js";

/** Signatures accepted: asymmetric only, so a public key can never serve as an HMAC secret. */
const ALGORITHMS = ["RS256", "ES256", "EdDSA"];
/** Clocks of the issuer and of this server may differ by this much. */
const CLOCK_SKEW_SECONDS = 30;
/** Tokens verified recently, kept so that a caller's calls are not each verified again. */
const CACHED_TOKENS = 4096;
/** A cached verification is trusted this long at most (and never past the token's `exp`). */
const CACHE_MS = 60_000;

export interface TokenAccessOptions {
  jwksFile: string;
  issuer: string;
  audience: string;
  tenantClaim: string;
  log: Logger;
}

/**
 * `--auth jwt`: the caller is the bearer token in its `authorization` metadata, a JWT signed by a
 * key of the JWKS file, for this server's issuer and audience, within its validity. Its tenant is
 * the `--auth-tenant-claim` claim and its scopes the `scope` claim (space separated).
 */
export class TokenAccess implements Access {
  readonly #keys: WatchedFiles<JWTVerifyGetKey>;
  readonly #options: TokenAccessOptions;
  readonly #verified = new Map<string, { identity: Identity; untilMs: number }>();

  private constructor(keys: WatchedFiles<JWTVerifyGetKey>, options: TokenAccessOptions) {
    this.#keys = keys;
    this.#options = options;
    // Tokens verified with keys that are gone must be verified again.
    keys.onChange(() => this.#verified.clear());
  }

  static async open(options: TokenAccessOptions): Promise<TokenAccess> {
    const keys = await WatchedFiles.open(
      [options.jwksFile],
      ([contents]) => keySetOf(contents ?? Buffer.alloc(0)),
      "the JWKS file",
      options.log,
    );
    return new TokenAccess(keys, options);
  }

  async authorize(call: ServerSurfaceCall, scope: Scope): Promise<string> {
    return tenantIfGranted(await this.#identify(bearerToken(call)), scope);
  }

  close(): void {
    this.#keys.close();
  }

  async #identify(token: string): Promise<Identity> {
    const cached = this.#verified.get(token);
    if (cached && Date.now() < cached.untilMs) return cached.identity;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys.current, {
        algorithms: ALGORITHMS,
        issuer: this.#options.issuer,
        audience: this.#options.audience,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      throw unauthenticated(rejectionReason(error));
    }
    const identity = this.#identityOf(payload);
    if (this.#verified.size >= CACHED_TOKENS) {
      this.#verified.delete(this.#verified.keys().next().value as string);
    }
    const expiresMs = ((payload.exp as number) + CLOCK_SKEW_SECONDS) * 1000;
    this.#verified.set(token, { identity, untilMs: Math.min(expiresMs, Date.now() + CACHE_MS) });
    return identity;
  }

  #identityOf(payload: JWTPayload): Identity {
    const claim = this.#options.tenantClaim;
    const tenant = payload[claim];
    if (typeof tenant !== "string" || tenant === "" || !isValidTenant(tenant)) {
      throw new SessionStoreError(
        Code.PermissionDenied,
        `the token's ${JSON.stringify(claim)} claim must name the caller's tenant: ${TENANT_RULE}`,
      );
    }
    return { subject: payload.sub ?? "", tenant, scopes: scopesOf(payload.scope) };
  }
}

/** The token of `authorization: Bearer <token>`, or UNAUTHENTICATED saying what to send. */
function bearerToken(call: ServerSurfaceCall): string {
  const values = call.metadata.get("authorization");
  if (values.length === 0) {
    throw unauthenticated(
      "this server needs a token: send the metadata authorization: Bearer <JWT>",
    );
  }
  const value = values.length === 1 ? values[0] : undefined;
  const match = typeof value === "string" ? /^Bearer +(\S+)$/i.exec(value) : null;
  if (!match?.[1]) {
    throw unauthenticated("the authorization metadata must be exactly one 'Bearer <JWT>'");
  }
  return match[1];
}

/**
 * Why a token was refused, as its holder can act on it: which claim or rule failed, never the
 * details of a failed signature check.
 */
function rejectionReason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired; get a new one";
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "nbf":
        return "the token is not valid yet (nbf); check the clocks of the issuer and the client";
      case "iss":
        return "the token was not issued by the issuer this server trusts (iss)";
      case "aud":
        return "the token is not meant for this server (aud)";
      case "exp":
        return "the token must have an expiry (exp)";
      default:
        return `the token's ${error.claim} claim is not valid`;
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return `the token's signature algorithm is not accepted: use one of ${ALGORITHMS.join(", ")}`;
  }
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) {
    return "the token is not a valid signed JWT";
  }
  return "the token's signature could not be verified with this server's keys";
}

function scopesOf(claim: unknown): ReadonlySet<Scope> {
  const names = typeof claim === "string" ? claim.split(/\s+/) : [];
  return new Set(SCOPES.filter((scope) => names.includes(scope)));
}

/** A JWKS file's keys, or an error saying what is wrong with the file. */
function keySetOf(contents: Buffer): JWTVerifyGetKey {
  const jwks = JSON.parse(contents.toString("utf8")) as JSONWebKeySet;
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
    throw new Error('a JWKS is a JSON object with a non-empty "keys" array');
  }
  return createLocalJWKSet(jwks);
}
