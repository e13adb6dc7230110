import type { FileHandle } from "node:fs/promises";
import { readLines } from "./lines.js";

/** What a scan of a file's records found. */
export interface RecordScan {
  /** Valid records, in order. */
  count: number;
  /** The offset just after the last valid record: anything after it is a torn tail. */
  end: number;
  /** The first record that is not a JSON object, when valid records follow it. */
  corrupt?: { seq: number; offset: number };
}

export interface ScanOptions {
  /** Accept what motosan's reader accepts: blank lines (skipped) and CRLF endings. */
  lenient: boolean;
  /** Receives the valid records in order, batch by batch (with CR endings removed). */
  onRecords?: (records: string[]) => Promise<void>;
}

/**
 * Scans the newline-separated records of `[start, size)`; each must be one JSON object. A record
 * that is not, or an unterminated last one, with nothing valid after it is a torn tail left by a
 * crash: the caller cuts it off at `end`. A bad record followed by valid ones is corruption: it is
 * reported in `corrupt`, never skipped, and the scan stops there.
 */
export async function scanRecords(
  handle: FileHandle,
  start: number,
  size: number,
  options: ScanOptions,
): Promise<RecordScan> {
  let count = 0;
  let end = start;
  let invalid: { seq: number; offset: number } | undefined;
  for await (const batch of readLines(handle, start, size)) {
    const valid: string[] = [];
    let offset = batch.start;
    for (const rawLine of batch.lines) {
      const lineOffset = offset;
      offset += Buffer.byteLength(rawLine, "utf8") + 1;
      const line = options.lenient && rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
      if (options.lenient && line.trim() === "") {
        if (!invalid) end = offset;
        continue;
      }
      if (!isJsonObject(line)) {
        invalid ??= { seq: count + valid.length, offset: lineOffset };
        continue;
      }
      if (invalid) return { count: count + valid.length, end, corrupt: invalid };
      valid.push(line);
      end = offset;
    }
    if (valid.length > 0) {
      await options.onRecords?.(valid);
      count += valid.length;
    }
  }
  return { count, end };
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
