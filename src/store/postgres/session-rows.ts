import { type Labels, sortedLabels } from "../../labels.js";
import type { SessionMeta } from "../storage.js";

/** A row of `sessionstore.sessions` as node-postgres returns it (bigints as strings). */
export interface SessionRow {
  session_id: string;
  length: string;
  durable_length: string;
  created_at_ms: string;
  updated_at_ms: string;
  agent_loop_version: string;
  labels: Labels;
  labels_revision: string;
  parent_session_id: string | null;
  parent_seq: string | null;
  first_seq: string;
  head_segment: string;
  head_base: string;
}

/** Seqs [from, to) of the segment `segment` written by session `owner`. */
export interface Piece {
  owner: string;
  segment: string;
  from: number;
  to: number;
}

/** A session row with its pieces (`sessionstore.pieces`), as a read selects it. */
export interface LaidOutRow extends SessionRow {
  pieces: { owner: string; segment: number; from_seq: number; to_seq: number }[] | null;
}

/**
 * The row of a session with its pieces, by tenant ($1) and id ($2): everything a read needs, in
 * one query.
 */
export const LAID_OUT_ROW = `SELECT s.*, (SELECT json_agg(p ORDER BY p.from_seq) FROM sessionstore.pieces p
   WHERE p.session_id = s.session_id AND p.tenant = s.tenant) AS pieces
 FROM sessionstore.sessions s WHERE s.tenant = $1 AND s.session_id = $2`;

/**
 * Where a session's kept messages are, in seq order: its pieces, then its head segment from its
 * head base (or first kept seq) to its length.
 */
export function layoutOf(row: LaidOutRow): Piece[] {
  const pieces: Piece[] = (row.pieces ?? []).map((piece) => ({
    owner: piece.owner,
    segment: String(piece.segment),
    from: piece.from_seq,
    to: piece.to_seq,
  }));
  const from = Math.max(Number(row.head_base), Number(row.first_seq));
  const to = Number(row.length);
  if (from < to) pieces.push({ owner: row.session_id, segment: row.head_segment, from, to });
  return pieces;
}

/** Whether two layouts are the same (a read that found a gap checks whether it moved). */
export function sameLayout(a: readonly Piece[], b: readonly Piece[]): boolean {
  return (
    a.length === b.length &&
    a.every((piece, i) => {
      const other = b[i] as Piece;
      return (
        piece.owner === other.owner &&
        piece.segment === other.segment &&
        piece.from === other.from &&
        piece.to === other.to
      );
    })
  );
}

/** A session row as the API reports it. */
export function toMeta(row: SessionRow): SessionMeta {
  return {
    sessionId: row.session_id,
    createdAtMs: Number(row.created_at_ms),
    agentLoopVersion: row.agent_loop_version,
    messageCount: Number(row.length),
    durableCount: Number(row.durable_length),
    updatedAtMs: Number(row.updated_at_ms),
    // jsonb orders keys by length first: sort them as every backend reports them.
    labels: sortedLabels(row.labels),
    labelsRevision: Number(row.labels_revision),
    parent:
      row.parent_session_id === null
        ? undefined
        : { sessionId: row.parent_session_id, seq: Number(row.parent_seq) },
    firstSeq: Number(row.first_seq),
  };
}
