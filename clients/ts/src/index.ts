/**
 * @sessionstore/client: a TypeScript client for sessionstore, the gRPC service that keeps AI
 * agents' conversation history.
 */
export { Appender, type AppenderOptions, type MessageAck } from "./appender.js";
export type { CallOptions, MetadataInit, MetadataSource, TokenSource } from "./call-options.js";
export {
  type AppendOptions,
  type AppendResult,
  type ContextWindow,
  type FlushAllResult,
  type ForkOptions,
  type Labels,
  type ListOptions,
  type ListOrder,
  type LoadOptions,
  type ReadOptions,
  type RewindOptions,
  type RewindResult,
  type SessionMeta,
  SessionStoreClient,
  type SessionStoreClientOptions,
  type SetLabelsOptions,
  type TlsOptions,
  type TrimResult,
  type WatchEvent,
  type WatchOptions,
  type WindowOptions,
} from "./client.js";
export {
  ACTUAL_LABELS_REVISION_KEY,
  ACTUAL_LENGTH_KEY,
  FIRST_SEQ_KEY,
  SessionStoreError,
  Status,
} from "./errors.js";
export type { JsonObject, JsonParser, MessageInput, StoredMessage } from "./messages.js";
export type { RetryPolicy } from "./retry.js";
