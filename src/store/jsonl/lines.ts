import type { FileHandle } from "node:fs/promises";

/** Bytes read per system call when scanning a file. */
const CHUNK_BYTES = 1 << 20;

const NEWLINE = 0x0a;

/** A buffer for reading `bytes` (or as much of them as one read takes). */
export function readBuffer(bytes: number): Buffer {
  return Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(bytes, 1)));
}

/** Complete lines read from a byte range: `[start, end)` holds exactly them and their newlines. */
export interface LineBatch {
  lines: string[];
  start: number;
  end: number;
}

/**
 * Yields the newline-terminated lines of `[start, end)` in order, one batch per chunk read, at
 * most `maxLines` in all. Bytes after the last newline are not yielded: a caller that needs to
 * know about them compares the last batch's `end` with `end`.
 */
export async function* readLines(
  handle: FileHandle,
  start: number,
  end: number,
  maxLines = Number.POSITIVE_INFINITY,
  chunk = readBuffer(end - start),
): AsyncGenerator<LineBatch> {
  // Pieces of a line that spans chunks (copied: the chunk buffer is reused).
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let remaining = maxLines;
  let position = start;
  while (position < end && remaining > 0) {
    const { bytesRead } = await handle.read(
      chunk,
      0,
      Math.min(chunk.length, end - position),
      position,
    );
    if (bytesRead === 0) break;
    const batchStart = position - partialBytes;
    const lines: string[] = [];
    let lineStart = 0;
    let newline = chunk.indexOf(NEWLINE, 0);
    while (newline !== -1 && newline < bytesRead && lines.length < remaining) {
      if (partialBytes > 0) {
        partial.push(chunk.subarray(0, newline));
        lines.push(Buffer.concat(partial).toString("utf8"));
        partial = [];
        partialBytes = 0;
      } else {
        lines.push(chunk.toString("utf8", lineStart, newline));
      }
      lineStart = newline + 1;
      newline = chunk.indexOf(NEWLINE, lineStart);
    }
    remaining -= lines.length;
    if (remaining > 0 && lineStart < bytesRead) {
      partial.push(Buffer.from(chunk.subarray(lineStart, bytesRead)));
      partialBytes += bytesRead - lineStart;
    }
    position += bytesRead;
    if (lines.length > 0)
      yield { lines, start: batchStart, end: position - (bytesRead - lineStart) };
  }
}

/**
 * The offset where line `seq` starts, counting lines from `dataStart`; `count` lines end at `end`.
 * Scans from whichever end is nearer, so the last lines of a long file are found without reading
 * the rest of it.
 */
export async function findLineStart(
  handle: FileHandle,
  dataStart: number,
  end: number,
  count: number,
  seq: number,
): Promise<number> {
  if (seq <= 0) return dataStart;
  if (seq >= count) return end;
  return seq < count / 2
    ? await findNthNewlineForward(handle, dataStart, end, seq)
    : await findNthNewlineBackward(handle, dataStart, end, count - seq + 1);
}

/** The offset just after the `n`th newline from `start` on. */
async function findNthNewlineForward(
  handle: FileHandle,
  start: number,
  end: number,
  n: number,
): Promise<number> {
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, end - start));
  let seen = 0;
  for (let position = start; position < end; ) {
    const { bytesRead } = await handle.read(
      chunk,
      0,
      Math.min(chunk.length, end - position),
      position,
    );
    if (bytesRead === 0) break;
    for (
      let i = chunk.indexOf(NEWLINE, 0);
      i !== -1 && i < bytesRead;
      i = chunk.indexOf(NEWLINE, i + 1)
    ) {
      if (++seen === n) return position + i + 1;
    }
    position += bytesRead;
  }
  throw new Error(`expected ${n} lines after offset ${start}, found ${seen}`);
}

/** The offset just after the `n`th newline counting back from `end` (the newline at end-1 is the 1st). */
async function findNthNewlineBackward(
  handle: FileHandle,
  start: number,
  end: number,
  n: number,
): Promise<number> {
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, end - start));
  let seen = 0;
  for (let position = end; position > start; ) {
    const length = Math.min(chunk.length, position - start);
    const chunkStart = position - length;
    const { bytesRead } = await handle.read(chunk, 0, length, chunkStart);
    if (bytesRead !== length) break;
    for (let i = length - 1; i >= 0; i--) {
      i = chunk.lastIndexOf(NEWLINE, i);
      if (i === -1) break;
      if (++seen === n) return chunkStart + i + 1;
    }
    position = chunkStart;
  }
  throw new Error(`expected ${n} lines before offset ${end}, found ${seen}`);
}
