/**
 * @sessionstore/client/langchain: a LangChain chat message history (`@langchain/core`) kept in
 * sessionstore. Each message is one message of the sessionstore session, in LangChain's own
 * serialized form, the same the Python client's LangChain history stores: a session either
 * writes, the other reads.
 */
import { BaseListChatMessageHistory } from "@langchain/core/chat_history";
import type { BaseMessage } from "@langchain/core/messages";
import { type AdapterOptions, adapterClient } from "./adapter-client.js";
import type { SessionStoreClient } from "./client.js";
import { fromStored, toStored } from "./langchain-form.js";

export type { StoredLangChainMessage } from "./langchain-form.js";

/** Where a SessionStoreChatMessageHistory keeps its messages. */
export type SessionStoreChatMessageHistoryOptions = AdapterOptions;

/**
 * A LangChain `BaseListChatMessageHistory` whose messages are one sessionstore session: return it
 * from `RunnableWithMessageHistory`'s `getMessageHistory`. Every field of a message round-trips
 * (content blocks, tool calls, ids, `additional_kwargs`, `response_metadata`, usage); other
 * processes, in any language, can load, watch, fork or list the session.
 */
export class SessionStoreChatMessageHistory extends BaseListChatMessageHistory {
  lc_namespace = ["langchain", "stores", "message", "sessionstore"];

  readonly sessionId: string;
  /** The sessionstore client, for what a history does not cover (windows, forks, labels). */
  readonly client: SessionStoreClient;
  readonly #ownsClient: boolean;

  constructor(options: SessionStoreChatMessageHistoryOptions) {
    // Nothing for Serializable's kwargs: a client is no part of a serialized history.
    super();
    this.sessionId = options.sessionId;
    const { client, owned } = adapterClient(options);
    this.client = client;
    this.#ownsClient = owned;
  }

  /** The session's messages, oldest first; none for a session that does not exist. */
  async getMessages(): Promise<BaseMessage[]> {
    const messages: BaseMessage[] = [];
    for await (const { seq, message } of this.client.load<unknown>(this.sessionId)) {
      messages.push(fromStored(message, `message ${seq} of session "${this.sessionId}"`));
    }
    return messages;
  }

  /** Appends one message (creating the session). */
  async addMessage(message: BaseMessage): Promise<void> {
    await this.addMessages([message]);
  }

  /** Appends the messages, in order, in one request: all are stored or none. */
  override async addMessages(messages: BaseMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.client.append(this.sessionId, messages.map(toStored));
  }

  /** Deletes the session (its labels too): its messages are gone, and adding starts it anew. */
  override async clear(): Promise<void> {
    await this.client.delete(this.sessionId);
  }

  /** Closes the client, if this history made it. */
  close(): void {
    if (this.#ownsClient) this.client.close();
  }
}
