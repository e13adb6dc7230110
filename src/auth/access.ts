import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call.js";
import { Code, SessionStoreError } from "../errors.js";

/** What each RPC needs the caller to be granted. */
export type Scope = "sessions:read" | "sessions:write" | "sessions:delete" | "sessions:admin";

export const SCOPES: readonly Scope[] = [
  "sessions:read",
  "sessions:write",
  "sessions:delete",
  "sessions:admin",
];

/** Who a caller is, as its credentials say: its tenant and what it may do. */
export interface Identity {
  /** For the logs: the token's `sub`, or the certificate's SPIFFE ID or subject. */
  subject: string;
  tenant: string;
  scopes: ReadonlySet<Scope>;
}

/**
 * Decides who a call is and whether it may do what it asks: resolves to the caller's tenant, or
 * rejects with UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED (a missing scope).
 */
export interface Access {
  authorize(call: ServerSurfaceCall, scope: Scope): Promise<string> | string;
  /** Stops watching files (a JWKS). */
  close?(): void;
}

/** `--auth none`: every caller is the one tenant "" and may do everything. */
export const OPEN_ACCESS: Access = { authorize: () => "" };

/**
 * The caller's tenant when its identity grants `scope` (`sessions:admin` grants every scope);
 * PERMISSION_DENIED naming the scope otherwise.
 */
export function tenantIfGranted(identity: Identity, scope: Scope): string {
  if (identity.scopes.has(scope) || identity.scopes.has("sessions:admin")) return identity.tenant;
  throw new SessionStoreError(
    Code.PermissionDenied,
    `this call needs the scope ${scope}, which the caller's credentials do not grant`,
  );
}

export function unauthenticated(reason: string): SessionStoreError {
  return new SessionStoreError(Code.Unauthenticated, reason);
}
