import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call.js";

/** What each RPC needs the caller's token to grant. */
export type Scope = "sessions:read" | "sessions:write" | "sessions:delete" | "sessions:admin";

/**
 * Decides who a call is and whether it may do what it asks: resolves to the caller's tenant, or
 * rejects with UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED (a missing scope).
 */
export interface Access {
  authorize(call: ServerSurfaceCall, scope: Scope): Promise<string> | string;
}

/** `--auth none`: every caller is the one tenant "" and may do everything. */
export const OPEN_ACCESS: Access = { authorize: () => "" };
