import {
  AIMessage,
  AIMessageChunk,
  type BaseMessage,
  ChatMessage,
  FunctionMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  SystemMessage,
  ToolMessage,
} from "@langchain/core/messages";

/** A tool call as langchain-core records it on an AIMessage. */
export const WEATHER_CALL = {
  name: "weather",
  args: { city: "Paris" },
  id: "call_1",
  type: "tool_call" as const,
};

/**
 * One of each kind of message, with the fields a round trip could lose. The same messages as
 * ASSORTED in test/interop/python/langchain_history.py, so that each language checks what the
 * other wrote against its own.
 */
export const assortedMessages = (): BaseMessage[] => [
  new SystemMessage({ content: "You are terse.", id: "m0" }),
  new HumanMessage({
    content: [
      { type: "text", text: "What is this?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
    ],
    name: "alice",
    id: "m1",
  }),
  new AIMessage({
    content: "",
    id: "m2",
    tool_calls: [WEATHER_CALL],
    invalid_tool_calls: [
      { name: "clock", args: "{not json", id: "call_2", error: "bad", type: "invalid_tool_call" },
    ],
    usage_metadata: { input_tokens: 12, output_tokens: 3, total_tokens: 15 },
    response_metadata: { model_name: "fake", finish_reason: "tool_calls" },
    additional_kwargs: { refusal: null },
  }),
  new ToolMessage({
    content: "18°C, ☀",
    tool_call_id: "call_1",
    artifact: { raw: [18, "C"] },
    status: "success",
    id: "m3",
  }),
  new ToolMessage({ content: "no such tool", tool_call_id: "call_2", status: "error", id: "m4" }),
  new ChatMessage({ content: "noted", role: "critic", id: "m5" }),
  new FunctionMessage({ content: "42", name: "answer", id: "m6" }),
  new AIMessageChunk({ content: "partial", id: "m7" }),
];

/** What distinguishes messages: their class, and every field langchain-core serializes. */
export const described = (messages: BaseMessage[]) =>
  messages.map((message, n) => ({
    class: message.constructor.name,
    stored: mapChatMessagesToStoredMessages(messages)[n],
  }));
