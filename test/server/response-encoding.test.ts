import { describe, expect, it } from "vitest";
import { LoadResponse, WatchResponse } from "../../gen/sessionstore/v1/session_store.js";
import { encodeLoadResponse, encodeWatchResponse } from "../../src/server/response-encoding.js";
import { bytesOf } from "../helpers/message-bytes.js";

const MESSAGES = ["{}", '{"é":"😀","n":12345678901234567890}', `{"long":"${"x".repeat(200_000)}"}`];

describe("response encoding from bytes", () => {
  it.each([
    ["an ordinary page", { firstSeq: 7, messages: MESSAGES, danglingCallIds: ["call_1", "é"] }],
    ["a page at seq 0, no dangling calls", { firstSeq: 0, messages: ["{}"], danglingCallIds: [] }],
    ["a first seq of 2^53 - 1", { firstSeq: 2 ** 53 - 1, messages: [], danglingCallIds: [] }],
  ])("encodes %s of Load exactly as the generated encoder does", (_name, response) => {
    const encoded = encodeLoadResponse({ ...response, messages: bytesOf(response.messages) });
    expect(encoded.equals(LoadResponse.encode(response).finish())).toBe(true);
    expect(LoadResponse.decode(encoded)).toEqual(response);
  });

  it.each([
    ["new messages", { firstSeq: 300, messages: MESSAGES }],
    ["a rewind to 0", { firstSeq: 0, messages: [], rewoundTo: 0 }],
    ["a rewind", { firstSeq: 129, messages: [], rewoundTo: 129 }],
  ])("encodes %s of Watch exactly as the generated encoder does", (_name, response) => {
    const encoded = encodeWatchResponse({ ...response, messages: bytesOf(response.messages) });
    expect(encoded.equals(WatchResponse.encode(response).finish())).toBe(true);
    expect(WatchResponse.decode(encoded)).toEqual({ rewoundTo: undefined, ...response });
  });
});
