import type { MessagePage, ReadRange } from "./storage.js";

/** The seqs [from, to) a read of `range` covers in a log of `length` messages. */
export function resolveRange(range: ReadRange, length: number): { from: number; to: number } {
  const { fromSeq, limit, last } = range;
  if (limit > 0 && last)
    return { from: Math.min(Math.max(fromSeq, length - limit), length), to: length };
  const to = limit > 0 ? Math.min(length, fromSeq + limit) : length;
  return { from: Math.min(fromSeq, to), to };
}

/** Messages held in memory are served in pages of about this many bytes. */
export const MEMORY_PAGE_BYTES = 1 << 20;

/** `messages` (whose first has seq `firstSeq`) as pages of about `pageBytes` each, in order. */
export function* pagesOf(
  messages: readonly Buffer[],
  firstSeq: number,
  pageBytes = MEMORY_PAGE_BYTES,
): Generator<MessagePage> {
  let start = 0;
  let bytes = 0;
  for (let index = 0; index < messages.length; index++) {
    bytes += (messages[index] as Buffer).length;
    if (bytes >= pageBytes || index === messages.length - 1) {
      yield { firstSeq: firstSeq + start, messages: messages.slice(start, index + 1) };
      start = index + 1;
      bytes = 0;
    }
  }
}
