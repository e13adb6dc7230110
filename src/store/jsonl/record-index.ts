import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { writeFully } from "./file-io.js";

/**
 * The sidecar index of a session file (`.sessionstore/index/<id>.idx` in the data directory):
 * for every record, where its line starts, how long it is and a CRC-32 of its bytes. It lets a
 * read of seq N seek straight to it, and lets every read check that each record is still the one
 * that was appended: an edited, split, merged or rotted record is refused with DATA_LOSS naming
 * its seq instead of being served (a cheaper check than parsing every record on every read).
 *
 * The index is derived data, never fsynced: the session file is the data of record. After a
 * crash it may lack the last records (they are scanned, validated and added on open) or, after a
 * power loss, describe records the file never got (they were not durable, and are dropped). Its
 * header says which file it describes (inode and first line), so a file replaced as a whole (a
 * restored backup, motosan rewriting it) is indexed anew, and how many records were durable, so
 * that durable records missing from the file are reported rather than forgotten.
 *
 * Layout, little-endian: a 32-byte header (magic, inode, data start, first-line checksum, durable
 * count), then 16 bytes per record (start offset, line length without the newline, CRC-32 of the
 * record, which is the line without a trailing CR).
 */
export const INDEX_HEADER_BYTES = 32;
export const INDEX_ENTRY_BYTES = 16;

const MAGIC = Buffer.from("SSIDX001", "latin1");

/** Which file an index describes: a file whose identity differs is indexed anew. */
export interface IndexedFile {
  inode: number;
  /** Offset of the first record (after the header line, if any). */
  dataStart: number;
  /** CRC-32 of what identifies the file's first line (see SessionFile). */
  firstLine: number;
}

export interface IndexHeader extends IndexedFile {
  /** Records known to be durable when the index was last updated. */
  durable: number;
}

/** Where a record is, and its checksum. */
export interface RecordEntry {
  start: number;
  /** Bytes of its line, without the newline (a trailing CR included). */
  lineLength: number;
  crc: number;
}

export function encodeHeader(header: IndexHeader): Buffer {
  const buffer = Buffer.alloc(INDEX_HEADER_BYTES);
  MAGIC.copy(buffer, 0);
  buffer.writeDoubleLE(header.inode, 8);
  buffer.writeUInt32LE(header.dataStart, 16);
  buffer.writeUInt32LE(header.firstLine, 20);
  buffer.writeDoubleLE(header.durable, 24);
  return buffer;
}

/** The header, or undefined when the bytes are not an index of this version. */
export function decodeHeader(buffer: Buffer): IndexHeader | undefined {
  if (buffer.length < INDEX_HEADER_BYTES || !buffer.subarray(0, 8).equals(MAGIC)) return undefined;
  return {
    inode: buffer.readDoubleLE(8),
    dataStart: buffer.readUInt32LE(16),
    firstLine: buffer.readUInt32LE(20),
    durable: buffer.readDoubleLE(24),
  };
}

export function sameFile(a: IndexedFile, b: IndexedFile): boolean {
  return a.inode === b.inode && a.dataStart === b.dataStart && a.firstLine === b.firstLine;
}

/** The index entries of `count` records, written into `target` at `offset`. */
export function encodeEntry(entry: RecordEntry, target: Buffer, offset: number): void {
  target.writeDoubleLE(entry.start, offset);
  target.writeUInt32LE(entry.lineLength, offset + 8);
  target.writeUInt32LE(entry.crc, offset + 12);
}

export function decodeEntry(source: Buffer, offset: number): RecordEntry {
  return {
    start: source.readDoubleLE(offset),
    lineLength: source.readUInt32LE(offset + 8),
    crc: source.readUInt32LE(offset + 12),
  };
}

/** The checksum of a record: its line's bytes without a trailing CR. */
export function recordChecksum(line: Buffer): number {
  const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
  return crc32(line.subarray(0, end));
}

/**
 * Index entries for `lines`, newline-terminated records written at `start`: one entry per line,
 * in order.
 */
export function entriesFor(lines: Buffer, start: number): Buffer {
  let count = 0;
  for (let at = lines.indexOf(0x0a); at !== -1; at = lines.indexOf(0x0a, at + 1)) count++;
  const entries = Buffer.allocUnsafe(count * INDEX_ENTRY_BYTES);
  let lineStart = 0;
  for (let i = 0; i < count; i++) {
    const newline = lines.indexOf(0x0a, lineStart);
    const line = lines.subarray(lineStart, newline);
    encodeEntry(
      { start: start + lineStart, lineLength: line.length, crc: recordChecksum(line) },
      entries,
      i * INDEX_ENTRY_BYTES,
    );
    lineStart = newline + 1;
  }
  return entries;
}

/** Byte offset of entry `seq` in the index file. */
export function entryOffset(seq: number): number {
  return INDEX_HEADER_BYTES + seq * INDEX_ENTRY_BYTES;
}

/** Reads entries [from, from + count) of an index file. */
export async function readEntries(
  handle: FileHandle,
  from: number,
  count: number,
): Promise<RecordEntry[]> {
  const bytes = count * INDEX_ENTRY_BYTES;
  const buffer = Buffer.allocUnsafe(bytes);
  const { bytesRead } = await handle.read(buffer, 0, bytes, entryOffset(from));
  if (bytesRead < bytes) {
    throw new Error(`the index holds fewer than ${from + count} records`);
  }
  const entries: RecordEntry[] = [];
  for (let offset = 0; offset < bytes; offset += INDEX_ENTRY_BYTES) {
    entries.push(decodeEntry(buffer, offset));
  }
  return entries;
}

/** Writes a whole index: header and the encoded entries. */
export async function writeIndex(
  handle: FileHandle,
  header: IndexHeader,
  entries: Buffer,
): Promise<void> {
  await writeFully(handle, encodeHeader(header), 0);
  await writeFully(handle, entries, INDEX_HEADER_BYTES);
  await handle.truncate(INDEX_HEADER_BYTES + entries.length);
}
