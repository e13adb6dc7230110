import type { ReadRange } from "./storage.js";

/** The seqs [from, to) a read of `range` covers in a log of `length` messages. */
export function resolveRange(range: ReadRange, length: number): { from: number; to: number } {
  const { fromSeq, limit, last } = range;
  if (limit > 0 && last)
    return { from: Math.min(Math.max(fromSeq, length - limit), length), to: length };
  const to = limit > 0 ? Math.min(length, fromSeq + limit) : length;
  return { from: Math.min(fromSeq, to), to };
}
