import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { AppendRequest } from "../../gen/sessionstore/v1/session_store.js";
import { Code, SessionStoreError } from "../../src/errors.js";
import {
  type AppendRequestBytes,
  checkDecoded,
  strictSessionStoreService,
} from "../../src/server/request-decoding.js";
import { textsOf } from "../helpers/message-bytes.js";

/** What the server's Append decoder makes of `bytes`, checked as a handler checks it. */
function decodeAppend(bytes: Uint8Array): AppendRequestBytes {
  const request = strictSessionStoreService.append.requestDeserialize(Buffer.from(bytes));
  checkDecoded(request);
  return request;
}

function refusal(bytes: Uint8Array): SessionStoreError {
  try {
    decodeAppend(bytes);
  } catch (error) {
    if (error instanceof SessionStoreError) return error;
    throw error;
  }
  throw new Error("expected the request to be refused");
}

/** An AppendRequest with a raw varint as expected_seq (field 3). */
function withExpectedSeq(varint: number[]): Uint8Array {
  return Buffer.concat([
    AppendRequest.encode({ sessionId: "s", messages: ["{}"], sync: false, labels: {} }).finish(),
    Buffer.from([24, ...varint]),
  ]);
}

describe("the Append request decoder", () => {
  it("reads every field as the generated decoder does, messages as their bytes", () => {
    const sent = {
      sessionId: "agent-1",
      messages: ['{"a":1}', '{"é":"😀","n":12345678901234567890}', "{}"],
      expectedSeq: 2 ** 53 - 1,
      sync: true,
      labels: { user: "alice", team: "é" },
    };
    const unknownField = new BinaryWriter()
      .uint32((99 << 3) | 2)
      .string("later field")
      .finish();
    const request = decodeAppend(
      Buffer.concat([AppendRequest.encode(sent).finish(), unknownField]),
    );
    expect({ ...request, messages: textsOf(request.messages) }).toEqual(sent);
    expect(request.messages.every((message) => Buffer.isBuffer(message))).toBe(true);
  });

  it("keeps messages as views of a request buffer of its own, and copies one that shares a slab", () => {
    const big = AppendRequest.encode({
      sessionId: "s",
      messages: [`{"s":"${"x".repeat(10_000)}"}`],
      sync: false,
      labels: {},
    }).finish();
    const own = Buffer.from(big);
    const [view] = strictSessionStoreService.append.requestDeserialize(own).messages;
    expect(view?.buffer).toBe(own.buffer);

    const small = AppendRequest.encode({
      sessionId: "s",
      messages: ["{}"],
      sync: false,
      labels: {},
    });
    const slab = Buffer.alloc(8192);
    const shared = Buffer.from(small.finish()).copy(slab, 100);
    const inSlab = slab.subarray(100, 100 + shared);
    const [copied] = strictSessionStoreService.append.requestDeserialize(inSlab).messages;
    expect(copied?.buffer).not.toBe(slab.buffer);
    expect(copied?.toString()).toBe("{}");
  });

  it.each([
    ["a byte that is never UTF-8", [0x7b, 0x22, 0xff, 0x22, 0x7d]],
    ["a truncated sequence", [0x7b, 0x22, 0xe2, 0x82, 0x22, 0x7d]],
    ["an encoded surrogate", [0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]],
    ["an overlong encoding", [0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]],
  ])("refuses a message holding %s with INVALID_ARGUMENT", (_name, message) => {
    const bytes = new BinaryWriter().uint32(10).string("s").uint32(18).bytes(Buffer.from(message));
    const error = refusal(bytes.finish());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toBe(
      "the request holds a string that is not valid UTF-8; send session ids and messages as UTF-8 text",
    );
  });

  it("refuses invalid UTF-8 in the session id and in labels too", () => {
    const id = new BinaryWriter()
      .uint32(10)
      .bytes(Buffer.from([0x61, 0xc3]))
      .finish();
    expect(refusal(id).message).toContain("not valid UTF-8");
    const entry = new BinaryWriter()
      .uint32(10)
      .string("k")
      .uint32(18)
      .bytes(Buffer.from([0xff]));
    const label = new BinaryWriter().uint32(42).bytes(entry.finish()).finish();
    expect(refusal(label).message).toContain("not valid UTF-8");
  });

  it.each([
    ["2^53", [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]],
    ["2^64 - 1", [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    [
      "a varint longer than ten bytes",
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    ],
    ["a varint cut off", [0xff, 0xff]],
  ])("refuses an expected_seq of %s with INVALID_ARGUMENT", (_name, varint) => {
    const error = refusal(withExpectedSeq(varint));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toMatch(
      /^the request could not be decoded \(.+\); numbers must be below 2\^53$/,
    );
  });

  it("accepts an expected_seq of 2^53 - 1", () => {
    const maxSafe = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    expect(decodeAppend(withExpectedSeq(maxSafe)).expectedSeq).toBe(2 ** 53 - 1);
  });

  it("refuses a message whose length runs past the request", () => {
    const cut = Buffer.from([10, 1, 0x73, 18, 50, 0x7b, 0x7d]);
    expect(refusal(cut).message).toMatch(/^the request could not be decoded/);
  });
});
