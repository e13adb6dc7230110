/**
 * LangChain messages in the form both sessionstore LangChain adapters store (this package's and
 * the Python client's), so that either reads what the other wrote: Python's `message_to_dict`,
 * `{"type": ..., "data": {...fields, "type": ...}}`. JS's own `toDict()` (what
 * `mapChatMessagesToStoredMessages` returns) is the same form but for two names:
 * - a `ChatMessage` is `"generic"` in JS and `"chat"` in Python: stored as `"chat"`;
 * - a chunk (`AIMessageChunk`, ...) is stored by JS as its message's type (`"ai"`), by Python as
 *   its class's name (`"AIMessageChunk"`): stored by the class's name, so it is read back a chunk.
 * Python writes the fields it has no value for as `null` (`"name": null`, `"id": null`); JS leaves
 * them out. Both are read: a null field is an absent one.
 */
import {
  AIMessageChunk,
  type BaseMessage,
  BaseMessageChunk,
  ChatMessageChunk,
  FunctionMessageChunk,
  HumanMessageChunk,
  mapChatMessagesToStoredMessages,
  mapStoredMessageToChatMessage,
  type StoredMessage,
  SystemMessageChunk,
  ToolMessageChunk,
} from "@langchain/core/messages";

/** A message as stored: one JSON object of the session. */
export interface StoredLangChainMessage {
  type: string;
  data: Record<string, unknown>;
}

type ChunkClass = new (fields: never) => BaseMessageChunk;

/** The chunk classes by their stored type (Python's class names), and by their message's type. */
const CHUNKS: Record<string, { messageType: string; make: ChunkClass }> = {
  AIMessageChunk: { messageType: "ai", make: AIMessageChunk },
  HumanMessageChunk: { messageType: "human", make: HumanMessageChunk },
  SystemMessageChunk: { messageType: "system", make: SystemMessageChunk },
  ToolMessageChunk: { messageType: "tool", make: ToolMessageChunk },
  FunctionMessageChunk: { messageType: "function", make: FunctionMessageChunk },
  ChatMessageChunk: { messageType: "generic", make: ChatMessageChunk },
};
const CHUNK_TYPES = new Map(
  Object.entries(CHUNKS).map(([type, { messageType }]) => [messageType, type]),
);

/** `message` in the stored form. */
export function toStored(message: BaseMessage): StoredLangChainMessage {
  const [dict] = mapChatMessagesToStoredMessages([message]);
  if (!dict) throw new Error("mapChatMessagesToStoredMessages returned nothing");
  const chunkType = BaseMessageChunk.isInstance(message) ? CHUNK_TYPES.get(dict.type) : undefined;
  const type = chunkType ?? (dict.type === "generic" ? "chat" : dict.type);
  return { type, data: { ...dict.data, type } };
}

/**
 * The message `stored` holds (as JSON.parse gave it); `where` names it in the error thrown when
 * it is no LangChain message.
 */
export function fromStored(stored: unknown, where: string): BaseMessage {
  if (!isObject(stored) || typeof stored.type !== "string" || !isObject(stored.data)) {
    throw new TypeError(`${where} is not a LangChain message (an object {type, data})`);
  }
  // `type` in data repeats the stored type; a null field is one Python had no value for.
  const fields = Object.fromEntries(
    Object.entries(stored.data).filter(([key, value]) => key !== "type" && value !== null),
  );
  const chunk = CHUNKS[stored.type];
  if (chunk) return new chunk.make(fields as never);
  const type = stored.type === "chat" ? "generic" : stored.type;
  try {
    return mapStoredMessageToChatMessage({ type, data: fields } as unknown as StoredMessage);
  } catch (error) {
    // langchain-core says which type or field it did not expect, never the message's content.
    throw new TypeError(`${where} is not a LangChain message: ${(error as Error).message}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
