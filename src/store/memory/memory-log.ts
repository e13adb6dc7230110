/**
 * Messages held in arrays that are only ever appended to, so that forks can share them: message
 * `i` of a segment has seq `base + i`, and its time (when it was appended) is `times[i]`.
 */
interface Segment {
  readonly messages: Buffer[];
  readonly times: number[];
  readonly base: number;
}

/** Seqs [from, to) of a segment, as part of a log. */
interface Piece {
  readonly segment: Segment;
  readonly from: number;
  readonly to: number;
}

/**
 * One session's messages in memory: pieces of segments shared with the sessions it was forked
 * from (never changed), then a segment of its own that appends grow. A fork takes pieces, not
 * copies; a rewind or a trim changes which pieces this log holds, never a segment's contents
 * that another log may see.
 */
export class MemoryLog {
  #pieces: Piece[];
  #own: Segment;
  #firstSeq: number;

  constructor(pieces: Piece[] = [], base = 0, firstSeq = 0) {
    this.#pieces = pieces;
    this.#own = { messages: [], times: [], base };
    this.#firstSeq = firstSeq;
  }

  get length(): number {
    return this.#own.base + this.#own.messages.length;
  }

  /** The first kept seq. */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  append(messages: readonly Buffer[], timeMs: number): void {
    for (const message of messages) {
      this.#own.messages.push(message);
      this.#own.times.push(timeMs);
    }
  }

  /** Messages [from, to) (within what is kept). */
  slice(from: number, to: number): Buffer[] {
    const out: Buffer[] = [];
    for (const piece of this.#allPieces()) {
      const start = Math.max(from, piece.from);
      const end = Math.min(to, piece.to);
      const { segment } = piece;
      for (let seq = start; seq < end; seq++) {
        out.push(segment.messages[seq - segment.base] as Buffer);
      }
    }
    return out;
  }

  /** A new log holding this one's kept messages before `atSeq` (shared, not copied). */
  forkAt(atSeq: number): MemoryLog {
    return new MemoryLog(this.#piecesBefore(atSeq), atSeq, this.#firstSeq);
  }

  /** Drops messages from `toSeq` on; answers them. */
  rewind(toSeq: number): Buffer[] {
    const dropped = this.slice(toSeq, this.length);
    this.#pieces = this.#piecesBefore(toSeq);
    this.#own = { messages: [], times: [], base: toSeq };
    return dropped;
  }

  /** Drops messages before `beforeSeq`, releasing what no other log shares. */
  trim(beforeSeq: number): void {
    if (beforeSeq <= this.#firstSeq) return;
    this.#firstSeq = beforeSeq;
    this.#pieces = this.#pieces
      .filter((piece) => piece.to > beforeSeq)
      .map((piece) => ({ ...piece, from: Math.max(piece.from, beforeSeq) }));
    const own = this.#own;
    if (beforeSeq > own.base) {
      // A copy of the rest: the dropped messages go unless a fork holds the old arrays.
      const cut = beforeSeq - own.base;
      this.#own = {
        messages: own.messages.slice(cut),
        times: own.times.slice(cut),
        base: beforeSeq,
      };
    }
  }

  /** The first kept seq appended at or after `timeMs`; the length when there is none. */
  firstSeqSince(timeMs: number): number {
    for (const piece of this.#allPieces()) {
      const { segment } = piece;
      const last = segment.times[piece.to - 1 - segment.base] ?? Number.NEGATIVE_INFINITY;
      if (last < timeMs) continue;
      // Times only grow along a segment: the first young enough one, by bisection.
      let low = piece.from;
      let high = piece.to - 1;
      while (low < high) {
        const middle = (low + high) >> 1;
        if ((segment.times[middle - segment.base] as number) >= timeMs) high = middle;
        else low = middle + 1;
      }
      return low;
    }
    return this.length;
  }

  /** The pieces, then the own segment as one, from the first kept seq. */
  *#allPieces(): Generator<Piece> {
    yield* this.#pieces;
    const own = this.#own;
    const from = Math.max(own.base, this.#firstSeq);
    if (own.messages.length > 0 && from < this.length) {
      yield { segment: own, from, to: this.length };
    }
  }

  /** Pieces covering the kept seqs before `seq`. */
  #piecesBefore(seq: number): Piece[] {
    const pieces: Piece[] = [];
    for (const piece of this.#allPieces()) {
      if (piece.from >= seq) break;
      pieces.push(piece.to <= seq ? piece : { ...piece, to: seq });
    }
    return pieces;
  }
}
