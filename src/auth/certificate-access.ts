import type { PeerCertificate } from "node:tls";
import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call.js";
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

/**
 * `--auth mtls`: the caller is its client certificate, which TLS has verified against
 * `--tls-client-ca`. A certificate is a workload's identity, with no scopes of its own: it may do
 * everything within its tenant. The tenant comes from the certificate (see `identityOf`).
 */
export class CertificateAccess implements Access {
  authorize(call: ServerSurfaceCall, scope: Scope): string {
    const certificate = call.getAuthContext().sslPeerCertificate;
    if (!certificate) {
      throw unauthenticated(
        "this server needs a client certificate (mTLS) signed by a CA it trusts",
      );
    }
    return tenantIfGranted(identityOf(certificate), scope);
  }
}

/**
 * A certificate's identity. With a SPIFFE ID (a `spiffe://` URI SAN) the tenant is the path
 * segment after `tenants/` (`spiffe://example.org/tenants/acme/agent`), else after `ns/` (Istio's
 * `spiffe://cluster.local/ns/acme/sa/agent`: the namespace). Without one, the tenant is the
 * subject's O (organization) and the subject its CN.
 */
export function identityOf(certificate: PeerCertificate): Identity {
  const spiffeId = spiffeIdOf(certificate);
  const all = new Set<Scope>(SCOPES);
  if (spiffeId) {
    const segments = new URL(spiffeId).pathname.split("/").filter(Boolean);
    const tenant = segmentAfter(segments, "tenants") ?? segmentAfter(segments, "ns");
    if (tenant === undefined) {
      throw noTenant(`its SPIFFE ID has no /tenants/<tenant>/ or /ns/<namespace>/ segment`);
    }
    return { subject: spiffeId, tenant: checked(tenant), scopes: all };
  }
  const organization = first(certificate.subject?.O);
  if (organization === undefined) {
    throw noTenant("it has neither a SPIFFE ID nor a subject O (organization)");
  }
  return {
    subject: first(certificate.subject?.CN) ?? "",
    tenant: checked(organization),
    scopes: all,
  };
}

function spiffeIdOf(certificate: PeerCertificate): string | undefined {
  // Node lists SANs as `DNS:a, URI:spiffe://td/path`; a URI SAN holds no ", ".
  return (certificate.subjectaltname ?? "")
    .split(", ")
    .find((name) => name.startsWith("URI:spiffe://"))
    ?.slice("URI:".length);
}

function segmentAfter(segments: string[], name: string): string | undefined {
  const index = segments.indexOf(name);
  return index === -1 ? undefined : segments[index + 1];
}

/** A subject field's value: Node gives an array when the field repeats. */
function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function checked(tenant: string): string {
  if (!isValidTenant(tenant) || tenant === "") {
    throw noTenant(`the tenant it names is not a valid tenant name (${TENANT_RULE})`);
  }
  return tenant;
}

function noTenant(reason: string): SessionStoreError {
  return new SessionStoreError(
    Code.PermissionDenied,
    `the client certificate names no tenant: ${reason}`,
  );
}
