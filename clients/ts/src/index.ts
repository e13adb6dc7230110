/**
 * @sessionstore/client: a TypeScript client for sessionstore, the gRPC service that keeps AI
 * agents' conversation history.
 */
export { Appender, type AppenderOptions, type MessageAck } from "./appender.js";
export type { CallOptions, MetadataInit, MetadataSource, TokenSource } from "./call-options.js";
export {
  type AppendOptions,
  type AppendResult,
  type FlushAllResult,
  type ListOptions,
  type LoadOptions,
  type ReadOptions,
  type SessionMeta,
  SessionStoreClient,
  type SessionStoreClientOptions,
  type TlsOptions,
  type WatchOptions,
} from "./client.js";
export { ACTUAL_LENGTH_KEY, SessionStoreError, Status } from "./errors.js";
export type { JsonObject, JsonParser, MessageInput, StoredMessage } from "./messages.js";
export type { RetryPolicy } from "./retry.js";
