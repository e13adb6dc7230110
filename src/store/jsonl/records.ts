import { isUtf8 } from "node:buffer";
import type { FileHandle } from "node:fs/promises";
import { scanJson } from "../../json-scan.js";
import { readLines } from "./lines.js";
import { encodeEntry, INDEX_ENTRY_BYTES, recordChecksum } from "./record-index.js";

/** What a validating scan of a file's records found. */
export interface RecordScan {
  /** Valid records, in order. */
  count: number;
  /** The offset just after the last valid record's line: anything after it is a torn tail. */
  end: number;
  /** Whether the last valid record ends the file without a newline (the next write adds one). */
  unterminated: boolean;
  /** The first record that is not a JSON object, when valid records follow it. */
  corrupt?: { seq: number; offset: number };
}

/**
 * Scans the records of `[start, size)` as motosan's reader reads them (blank lines skipped, CRLF
 * endings accepted), checking that each is one JSON object, and passes the index entries of the
 * valid ones to `onEntries` in order. A record that is not valid, or an unterminated last one that
 * is not, with nothing valid after it is a torn tail left by a crash: the caller may cut it off at
 * `end`. A bad record followed by valid ones is corruption: it is reported in `corrupt`, never
 * skipped, and the scan stops there.
 */
export async function scanRecords(
  handle: FileHandle,
  start: number,
  size: number,
  onEntries: (entries: Buffer) => Promise<void>,
): Promise<RecordScan> {
  let count = 0;
  let end = start;
  let invalid: { seq: number; offset: number } | undefined;
  for await (const batch of readLines(handle, start, size)) {
    const entries = Buffer.allocUnsafe(batch.lines.length * INDEX_ENTRY_BYTES);
    let valid = 0;
    let offset = batch.start;
    for (const line of batch.lines) {
      const lineStart = offset;
      offset += line.length + 1;
      if (isBlank(line)) {
        if (!invalid) end = offset;
        continue;
      }
      if (!isJsonObject(line)) {
        invalid ??= { seq: count + valid, offset: lineStart };
        continue;
      }
      if (invalid) {
        await flushEntries(entries, valid, onEntries);
        return { count: count + valid, end, unterminated: false, corrupt: invalid };
      }
      encodeEntry(
        { start: lineStart, lineLength: line.length, crc: recordChecksum(line) },
        entries,
        valid * INDEX_ENTRY_BYTES,
      );
      valid++;
      end = offset;
    }
    await flushEntries(entries, valid, onEntries);
    count += valid;
  }
  if (!invalid && end < size) {
    // Bytes after the last newline: a last record written without one, or a torn write.
    const tail = Buffer.alloc(size - end);
    await handle.read(tail, 0, tail.length, end);
    if (!isBlank(tail) && isJsonObject(tail)) {
      const entries = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
      encodeEntry({ start: end, lineLength: tail.length, crc: recordChecksum(tail) }, entries, 0);
      await onEntries(entries);
      return { count: count + 1, end: size, unterminated: true };
    }
  }
  return { count, end, unterminated: false };
}

async function flushEntries(
  entries: Buffer,
  count: number,
  onEntries: (entries: Buffer) => Promise<void>,
): Promise<void> {
  if (count > 0) await onEntries(entries.subarray(0, count * INDEX_ENTRY_BYTES));
}

/** Whether a line holds only JSON whitespace (motosan's reader skips such lines). */
function isBlank(line: Buffer): boolean {
  for (const byte of line) {
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  }
  return true;
}

/** Whether a line is valid UTF-8 holding one JSON object (scanned: no string, no objects built). */
function isJsonObject(line: Buffer): boolean {
  return isUtf8(line) && scanJson(line)?.kind === "object";
}
