/**
 * @sessionstore/client/openai-agents: the OpenAI Agents SDK's `Session` (`@openai/agents`), kept
 * in sessionstore. Each item the runner records (a user message, a tool call, its output, a reply)
 * is one message of the sessionstore session, stored as its JSON text.
 */
import type { AgentInputItem, Session } from "@openai/agents-core";
import { type AdapterOptions, adapterClient } from "./adapter-client.js";
import type { SessionStoreClient } from "./client.js";
import { SessionStoreError, Status } from "./errors.js";

/** How many times popItem tries again while other writers keep changing the session's length. */
export const POP_ATTEMPTS = 100;

/** Where a SessionStoreSession keeps its items. */
export type SessionStoreSessionOptions = AdapterOptions;

/**
 * An OpenAI Agents SDK session whose items are the messages of one sessionstore session: give
 * it to `run(agent, input, { session })`. Other processes, in any language, can load, watch,
 * fork or list the same session with the sessionstore clients.
 */
export class SessionStoreSession implements Session {
  readonly sessionId: string;
  /** The sessionstore client, for what `Session` does not cover (windows, forks, labels). */
  readonly client: SessionStoreClient;
  readonly #ownsClient: boolean;

  constructor(options: SessionStoreSessionOptions) {
    this.sessionId = options.sessionId;
    const { client, owned } = adapterClient(options);
    this.client = client;
    this.#ownsClient = owned;
  }

  async getSessionId(): Promise<string> {
    return this.sessionId;
  }

  /** All the items, oldest first, or the latest `limit` of them (none for `limit <= 0`). */
  async getItems(limit?: number): Promise<AgentInputItem[]> {
    if (limit !== undefined && limit <= 0) return [];
    const items: AgentInputItem[] = [];
    const options = limit === undefined ? {} : { limit, last: true };
    for await (const { message } of this.client.load<AgentInputItem>(this.sessionId, options)) {
      items.push(message);
    }
    return items;
  }

  /** Appends the items, in order, in one request: all are stored or none. */
  async addItems(items: AgentInputItem[]): Promise<void> {
    if (items.length === 0) return;
    await this.client.append(this.sessionId, items);
  }

  /**
   * Removes and returns the latest item (undefined when the session is empty). Atomic: the
   * rewind is conditional on the session's length, so an item another writer appends in between
   * is never dropped unseen; on such a conflict (ABORTED) it pops again at the length reported.
   */
  async popItem(): Promise<AgentInputItem | undefined> {
    const meta = await this.client.meta(this.sessionId);
    if (!meta || meta.messageCount === meta.firstSeq) return undefined; // empty, or all trimmed
    let length = meta.messageCount;
    for (let attempt = 1; ; attempt++) {
      try {
        const rewound = await this.client.rewind<AgentInputItem>(this.sessionId, length - 1, {
          expectedSeq: length,
        });
        return rewound.dropped[0]?.message;
      } catch (error) {
        if (!(error instanceof SessionStoreError)) throw error;
        // Deleted meanwhile, or trimmed to nothing (the length matched, so the seq is below the
        // first kept one): empty either way.
        if (error.code === Status.NOT_FOUND || error.code === Status.OUT_OF_RANGE) {
          return undefined;
        }
        if (
          error.code !== Status.ABORTED ||
          error.actualLength === undefined ||
          attempt === POP_ATTEMPTS
        ) {
          throw error;
        }
        // Another writer changed the session's length since it was read: pop at its length now.
        length = error.actualLength;
        if (length === 0) return undefined;
      }
    }
  }

  /** Deletes the session (its labels too); adding items afterwards starts it again. */
  async clearSession(): Promise<void> {
    await this.client.delete(this.sessionId);
  }

  /** Closes the client, if this session made it. */
  close(): void {
    if (this.#ownsClient) this.client.close();
  }
}
