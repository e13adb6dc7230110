import type { FileHandle } from "node:fs/promises";

/** Bytes read per system call when scanning a file. */
const CHUNK_BYTES = 1 << 20;

const NEWLINE = 0x0a;

/** Complete lines read from a byte range: `[start, end)` holds exactly them and their newlines. */
export interface LineBatch {
  /** Each line's bytes without its newline; views that are valid only until the next batch. */
  lines: Buffer[];
  start: number;
  end: number;
}

/**
 * Yields the newline-terminated lines of `[start, end)` in order, one batch per chunk read, at
 * most `maxLines` in all. Bytes after the last newline are not yielded: a caller that needs them
 * compares the last batch's `end` with `end`. Offsets are bytes, whatever the lines hold.
 */
export async function* readLines(
  handle: FileHandle,
  start: number,
  end: number,
  maxLines = Number.POSITIVE_INFINITY,
): AsyncGenerator<LineBatch> {
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(end - start, 1)));
  // A line that spans chunks, copied out of the reused chunk buffer.
  let partial: Buffer | undefined;
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
    const batchStart = position - (partial?.length ?? 0);
    const lines: Buffer[] = [];
    let lineStart = 0;
    for (
      let newline = chunk.indexOf(NEWLINE, 0);
      newline !== -1 && newline < bytesRead && lines.length < remaining;
      newline = chunk.indexOf(NEWLINE, lineStart)
    ) {
      const piece = chunk.subarray(lineStart, newline);
      lines.push(partial ? Buffer.concat([partial, piece]) : piece);
      partial = undefined;
      lineStart = newline + 1;
    }
    remaining -= lines.length;
    if (remaining > 0 && lineStart < bytesRead) {
      const rest = chunk.subarray(lineStart, bytesRead);
      partial = partial ? Buffer.concat([partial, rest]) : Buffer.from(rest);
    }
    position += bytesRead;
    if (lines.length > 0) {
      yield { lines, start: batchStart, end: position - (bytesRead - lineStart) };
    }
  }
}

/**
 * `messages` as newline-terminated lines in one new buffer (one allocation, one copy of each),
 * after a newline when `leadingNewline` (to end a last line someone else left unterminated).
 */
export function joinLines(messages: readonly Uint8Array[], leadingNewline = false): Buffer {
  let size = leadingNewline ? 1 : 0;
  for (const message of messages) size += message.length + 1;
  const lines = Buffer.allocUnsafe(size);
  let at = 0;
  if (leadingNewline) lines[at++] = NEWLINE;
  for (const message of messages) {
    lines.set(message, at);
    at += message.length;
    lines[at++] = NEWLINE;
  }
  return lines;
}
