/**
 * The client of a framework adapter (openai-agents, langchain): one the caller gives, which stays
 * theirs to close, or one the adapter makes from an address and closes itself.
 */
import { SessionStoreClient, type SessionStoreClientOptions } from "./client.js";

/** The server's address when none is given. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";

/** Where an adapter keeps one session's messages. */
export interface AdapterOptions {
  /**
   * The sessionstore session: 1-200 characters of `[A-Za-z0-9._:@~-]`, not starting with `.`
   * (the server refuses any other with INVALID_ARGUMENT).
   */
  sessionId: string;
  /** A client of your own (its token, TLS, timeouts); `close()` leaves it open. */
  client?: SessionStoreClient;
  /** Or the server's host:port (default 127.0.0.1:50051), for a client the adapter makes. */
  address?: string;
  /** Options of the client the adapter makes from `address`. */
  clientOptions?: SessionStoreClientOptions;
}

/** The client `options` name or describe, and whether the adapter made it (so must close it). */
export function adapterClient(options: AdapterOptions): {
  client: SessionStoreClient;
  owned: boolean;
} {
  if (options.client) {
    if (options.address !== undefined || options.clientOptions) {
      throw new TypeError("give client, or address and clientOptions, not both");
    }
    return { client: options.client, owned: false };
  }
  return {
    client: new SessionStoreClient(options.address ?? DEFAULT_ADDRESS, options.clientOptions),
    owned: true,
  };
}
