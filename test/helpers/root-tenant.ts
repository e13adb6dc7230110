import type { SessionStorage, StorageBackend } from "../../src/store/storage.js";

/**
 * A backend and its tenant "" (a server without authentication) as one object: the storage
 * tests that are not about tenants call sessions' methods on it directly, and open, close and
 * reopen it as a backend.
 */
export interface RootTenantStorage<Backend extends StorageBackend = StorageBackend>
  extends SessionStorage,
    StorageBackend {
  readonly backend: Backend;
}

export function rootTenantOf<Backend extends StorageBackend>(
  backend: Backend,
): RootTenantStorage<Backend> {
  // Looked up at each call: a backend hands out tenants only once it is open.
  const sessions = () => backend.tenant("");
  return {
    backend,
    open: () => backend.open(),
    close: () => backend.close(),
    tenant: (tenant) => backend.tenant(tenant),
    tenants: () => backend.tenants(),
    watchHealth: (listener) => backend.watchHealth?.(listener) ?? (() => undefined),
    levels: () => backend.levels(),
    append: (sessionId, messages, options) => sessions().append(sessionId, messages, options),
    read: (sessionId, range) => sessions().read(sessionId, range),
    meta: (sessionId) => sessions().meta(sessionId),
    list: (query) => sessions().list(query),
    delete: (sessionId, guard) => sessions().delete(sessionId, guard),
    setLabels: (sessionId, change, expected) => sessions().setLabels(sessionId, change, expected),
    fork: (sessionId, atSeq, newId, labels) => sessions().fork(sessionId, atSeq, newId, labels),
    rewind: (sessionId, toSeq, expected) => sessions().rewind(sessionId, toSeq, expected),
    trim: (sessionId, beforeSeq) => sessions().trim(sessionId, beforeSeq),
    firstSeqSince: (sessionId, timeMs) => sessions().firstSeqSince(sessionId, timeMs),
    flush: (sessionId) => sessions().flush(sessionId),
    subscribe: (sessionId, listener) => sessions().subscribe(sessionId, listener),
  };
}
