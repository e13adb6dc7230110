import { crc32 } from "node:zlib";

/**
 * The journal's records. Each is a frame: its body's length and CRC-32 (u32 little-endian each),
 * then the body: a kind byte, the session file's path relative to the data directory (u16
 * length, UTF-8), the file's inode and a byte offset (f64 each), then for an append the bytes
 * written to the file at that offset. A frame that is short or fails its checksum is where a
 * crash tore the journal: reading stops there.
 */

/** Bytes written to a session file at `start`: once replayed, the file holds them there. */
export interface AppendRecord {
  kind: "append";
  /** The session file, relative to the data directory (`id.jsonl`, `tenants/t/id.jsonl`). */
  path: string;
  inode: number;
  start: number;
  bytes: Buffer;
}

/**
 * The session file's earlier records must not be replayed: it was rewound, trimmed, replaced or
 * deleted after they were made durable in the file itself, or it changed outside the server.
 */
export interface ForgetRecord {
  kind: "forget";
  path: string;
  inode: number;
}

export type JournalRecord = AppendRecord | ForgetRecord;

const FRAME_HEADER_BYTES = 8;
const KIND = { append: 1, forget: 2 } as const;
/** Kind, path length, inode, offset. */
const FIXED_BODY_BYTES = 1 + 2 + 8 + 8;

/**
 * The frame of `record` as buffers to write one after the other (an append's bytes are not
 * copied).
 */
export function encodeRecord(record: JournalRecord): Buffer[] {
  const path = Buffer.from(record.path, "utf8");
  const payload = record.kind === "append" ? record.bytes : Buffer.alloc(0);
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + FIXED_BODY_BYTES + path.length);
  const bodyLength = FIXED_BODY_BYTES + path.length + payload.length;
  head.writeUInt32LE(bodyLength, 0);
  let at = FRAME_HEADER_BYTES;
  head.writeUInt8(KIND[record.kind], at);
  head.writeUInt16LE(path.length, at + 1);
  path.copy(head, at + 3);
  at += 3 + path.length;
  head.writeDoubleLE(record.inode, at);
  head.writeDoubleLE(record.kind === "append" ? record.start : 0, at + 8);
  const crc = crc32(payload, crc32(head.subarray(FRAME_HEADER_BYTES)));
  head.writeUInt32LE(crc, 4);
  return payload.length > 0 ? [head, payload] : [head];
}

/** What a segment holds: its whole records, and where the first torn one starts, if any. */
export interface DecodedSegment {
  records: JournalRecord[];
  /** Bytes of whole records; the rest (a torn tail) is ignored. */
  validBytes: number;
}

/** The whole records at the start of `segment`, stopping at the first torn or damaged one. */
export function decodeSegment(segment: Buffer): DecodedSegment {
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= segment.length) {
    const bodyLength = segment.readUInt32LE(at);
    const bodyStart = at + FRAME_HEADER_BYTES;
    const bodyEnd = bodyStart + bodyLength;
    if (bodyLength < FIXED_BODY_BYTES || bodyEnd > segment.length) break;
    const body = segment.subarray(bodyStart, bodyEnd);
    if (crc32(body) !== segment.readUInt32LE(at + 4)) break;
    const record = decodeBody(body);
    if (!record) break;
    records.push(record);
    at = bodyEnd;
  }
  return { records, validBytes: at };
}

function decodeBody(body: Buffer): JournalRecord | undefined {
  const kind = body.readUInt8(0);
  const pathLength = body.readUInt16LE(1);
  const fixedEnd = 3 + pathLength + 16;
  if (fixedEnd > body.length) return undefined;
  const path = body.toString("utf8", 3, 3 + pathLength);
  const inode = body.readDoubleLE(3 + pathLength);
  const start = body.readDoubleLE(3 + pathLength + 8);
  if (kind === KIND.forget) return { kind: "forget", path, inode };
  if (kind !== KIND.append || !Number.isSafeInteger(start) || start < 0) return undefined;
  return { kind: "append", path, inode, start, bytes: body.subarray(fixedEnd) };
}
