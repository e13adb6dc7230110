import { isUtf8 } from "node:buffer";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import {
  type AppendRequest,
  AppendRequest_LabelsEntry,
  DeleteRequest,
  FlushRequest,
  ForkRequest,
  ListRequest,
  LoadMetaRequest,
  LoadRequest,
  RewindRequest,
  SessionStoreService,
  SetLabelsRequest,
  TrimRequest,
  WatchRequest,
} from "../../gen/sessionstore/v1/session_store.js";
import { invalidArgument } from "../errors.js";
import {
  encodeLoadResponse,
  encodeWatchResponse,
  type LoadResponseBytes,
  type WatchResponseBytes,
} from "./response-encoding.js";

const UNDECODABLE = Symbol("undecodable request");

interface Decoder<T> {
  decode(input: BinaryReader | Uint8Array): T;
}

/** Decodes with a generated decoder, strings checked to be UTF-8. */
function generated(type: Decoder<object>): (buffer: Buffer) => object {
  return (buffer) => type.decode(new BinaryReader(buffer, decodeUtf8Strictly));
}

/** An AppendRequest as the server reads it: each message the bytes it came in (valid UTF-8). */
export interface AppendRequestBytes extends Omit<AppendRequest, "messages"> {
  messages: Buffer[];
}

const REQUEST_DECODERS: Record<keyof typeof SessionStoreService, (buffer: Buffer) => object> = {
  append: decodeAppendRequest,
  flush: generated(FlushRequest),
  load: generated(LoadRequest),
  loadMeta: generated(LoadMetaRequest),
  list: generated(ListRequest),
  delete: generated(DeleteRequest),
  watch: generated(WatchRequest),
  setLabels: generated(SetLabelsRequest),
  fork: generated(ForkRequest),
  rewind: generated(RewindRequest),
  trim: generated(TrimRequest),
};

class InvalidUtf8Error extends Error {}

/** Protobuf strings must be UTF-8: reject, rather than replace, anything else. */
function decodeUtf8Strictly(bytes: Uint8Array): string {
  if (!isUtf8(bytes)) throw new InvalidUtf8Error();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

type Service = typeof SessionStoreService;

/**
 * SessionStoreService as strictSessionStoreService serves it: messages stay bytes, in Append
 * requests and in Load and Watch responses.
 */
export type StrictSessionStoreService = {
  [Name in keyof Service]: Name extends "append"
    ? Omit<Service[Name], "requestDeserialize"> & {
        requestDeserialize(buffer: Buffer): AppendRequestBytes;
      }
    : Name extends "load"
      ? Omit<Service[Name], "responseSerialize"> & {
          responseSerialize(response: LoadResponseBytes): Buffer;
        }
      : Name extends "watch"
        ? Omit<Service[Name], "responseSerialize"> & {
            responseSerialize(response: WatchResponseBytes): Buffer;
          }
        : Service[Name];
};

/** The response encoders that replace the generated ones (src/server/response-encoding.ts). */
const RESPONSE_ENCODERS: Partial<Record<keyof Service, (response: never) => Buffer>> = {
  load: encodeLoadResponse,
  watch: encodeWatchResponse,
};

/**
 * SessionStoreService with request decoders that refuse invalid UTF-8 (the generated ones would
 * silently turn it into U+FFFD, storing text the client never sent) and numbers past 2^53, and
 * with Append's messages decoded, and Load's and Watch's encoded, as bytes. grpc-js answers
 * INTERNAL when a decoder throws, so a request that cannot be decoded is handed to the handler
 * marked instead, and `checkDecoded` turns it into INVALID_ARGUMENT.
 */
export const strictSessionStoreService = Object.fromEntries(
  Object.entries(SessionStoreService).map(([name, method]) => {
    const decode = REQUEST_DECODERS[name as keyof Service];
    return [
      name,
      {
        ...method,
        responseSerialize: RESPONSE_ENCODERS[name as keyof Service] ?? method.responseSerialize,
        requestDeserialize: (buffer: Buffer) => {
          try {
            return decode(buffer);
          } catch (error) {
            return { [UNDECODABLE]: describeDecodeError(error) };
          }
        },
      },
    ];
  }),
) as StrictSessionStoreService;

/**
 * Decodes an AppendRequest as the generated decoder does (same fields, unknown ones skipped),
 * but keeps each message as bytes: a view of the request's buffer, checked to be UTF-8, never
 * decoded into a string, as it is stored and answered as bytes. A request that is a small part
 * of a larger allocation (a pool's slab) is copied once first, so that the messages a store
 * keeps do not keep the rest of that allocation alive.
 */
function decodeAppendRequest(received: Buffer): AppendRequestBytes {
  const buffer = ownAllocation(received);
  const reader = new BinaryReader(buffer, decodeUtf8Strictly);
  const request: AppendRequestBytes = {
    sessionId: "",
    messages: [],
    expectedSeq: undefined,
    sync: false,
    labels: {},
  };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag) {
      case 10: // 1: session_id, length-delimited
        request.sessionId = reader.string();
        continue;
      case 18: {
        // 2: messages; BinaryReader.bytes is a view of `buffer`, which is a Buffer
        const message = reader.bytes() as Buffer;
        if (!isUtf8(message)) throw new InvalidUtf8Error();
        request.messages.push(message);
        continue;
      }
      case 24: // 3: expected_seq, varint
        request.expectedSeq = safeInteger(reader.uint64());
        continue;
      case 32: // 4: sync, varint
        request.sync = reader.bool();
        continue;
      case 42: {
        // 5: labels, map entries
        const entry = AppendRequest_LabelsEntry.decode(reader, reader.uint32());
        request.labels[entry.key] = entry.value;
        continue;
      }
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return request;
}

/** `buffer`, or a copy of it when it is under half of the memory it keeps alive. */
function ownAllocation(buffer: Buffer): Buffer {
  if (buffer.byteLength * 2 >= buffer.buffer.byteLength) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.byteLength);
  buffer.copy(copy);
  return copy;
}

/** A uint64 as a number, refused (as the generated decoders do) past 2^53. */
function safeInteger(value: bigint | string): number {
  const number = Number(value);
  if (number > Number.MAX_SAFE_INTEGER) {
    throw new Error("Value is larger than Number.MAX_SAFE_INTEGER");
  }
  return number;
}

function describeDecodeError(error: unknown): string {
  if (error instanceof InvalidUtf8Error) {
    return "the request holds a string that is not valid UTF-8; send session ids and messages as UTF-8 text";
  }
  return `the request could not be decoded (${(error as Error).message}); numbers must be below 2^53`;
}

/** Throws INVALID_ARGUMENT for a request the strict decoder could not decode. */
export function checkDecoded(request: object): void {
  const problem = (request as { [UNDECODABLE]?: string })[UNDECODABLE];
  if (problem !== undefined) throw invalidArgument(problem);
}

/** Streams what `produce` yields, after checking that the request could be decoded. */
export async function* checkedStream<T>(
  request: object,
  produce: () => AsyncIterable<T>,
): AsyncGenerator<T> {
  checkDecoded(request);
  yield* produce();
}
