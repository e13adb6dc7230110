import { Code, SessionStoreError } from "./errors.js";

/** The tenant rule, said the same way in every error. */
export const TENANT_RULE =
  "a tenant is 1-64 characters of [A-Za-z0-9._-] and does not start with '.'";

const TENANT_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

/**
 * Whether `tenant` follows the rule, or is "" (the one tenant of a server without
 * authentication). The rule keeps tenants usable as directory names and key parts everywhere.
 */
export function isValidTenant(tenant: string): boolean {
  return tenant === "" || TENANT_PATTERN.test(tenant);
}

/** Throws PERMISSION_DENIED, naming the rule, unless `tenant` follows it. */
export function checkTenant(tenant: string): void {
  if (!isValidTenant(tenant)) {
    throw new SessionStoreError(
      Code.PermissionDenied,
      `the caller's tenant ${JSON.stringify(tenant.slice(0, 70))} is not a valid tenant name: ${TENANT_RULE}`,
    );
  }
}
