import { isUtf8 } from "node:buffer";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import {
  AppendRequest,
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

const UNDECODABLE = Symbol("undecodable request");

interface Decoder<T> {
  decode(input: BinaryReader | Uint8Array): T;
}

const REQUEST_TYPES: Record<keyof typeof SessionStoreService, Decoder<object>> = {
  append: AppendRequest,
  flush: FlushRequest,
  load: LoadRequest,
  loadMeta: LoadMetaRequest,
  list: ListRequest,
  delete: DeleteRequest,
  watch: WatchRequest,
  setLabels: SetLabelsRequest,
  fork: ForkRequest,
  rewind: RewindRequest,
  trim: TrimRequest,
};

class InvalidUtf8Error extends Error {}

/** Protobuf strings must be UTF-8: reject, rather than replace, anything else. */
function decodeUtf8Strictly(bytes: Uint8Array): string {
  if (!isUtf8(bytes)) throw new InvalidUtf8Error();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/**
 * SessionStoreService with request decoders that refuse invalid UTF-8 (the generated ones would
 * silently turn it into U+FFFD, storing text the client never sent) and numbers past 2^53. grpc-js
 * answers INTERNAL when a decoder throws, so a request that cannot be decoded is handed to the
 * handler marked instead, and `checkDecoded` turns it into INVALID_ARGUMENT.
 */
export const strictSessionStoreService = Object.fromEntries(
  Object.entries(SessionStoreService).map(([name, method]) => {
    const type = REQUEST_TYPES[name as keyof typeof SessionStoreService];
    return [
      name,
      {
        ...method,
        requestDeserialize: (buffer: Buffer) => {
          try {
            return type.decode(new BinaryReader(buffer, decodeUtf8Strictly));
          } catch (error) {
            return { [UNDECODABLE]: describeDecodeError(error) };
          }
        },
      },
    ];
  }),
) as typeof SessionStoreService;

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
