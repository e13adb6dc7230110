import type { Logger } from "pino";
import { type Config, isLoopback } from "../config.js";
import { type Access, OPEN_ACCESS } from "./access.js";

/**
 * How the server decides who its callers are, as `--auth` says. The JOSE library is loaded only
 * for `jwt`: the default server starts without it.
 */
export async function createAccess(config: Config, log: Logger): Promise<Access> {
  switch (config.auth) {
    case "none":
      return OPEN_ACCESS;
    case "mtls": {
      const { CertificateAccess } = await import("./certificate-access.js");
      return new CertificateAccess();
    }
    case "jwt": {
      if (config.tlsCert === "" && !isLoopback(config.listen)) {
        log.warn(
          { listen: config.listen },
          "tokens arrive in plaintext: serve TLS (--tls-cert, --tls-key) unless a mesh sidecar encrypts every connection",
        );
      }
      const { TokenAccess } = await import("./token-access.js");
      return TokenAccess.open({
        jwksFile: config.authJwks,
        issuer: config.authIssuer,
        audience: config.authAudience,
        tenantClaim: config.authTenantClaim,
        log,
      });
    }
  }
}
