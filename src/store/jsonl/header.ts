/**
 * Line 1 of a session file: motosan's session header, which its reader recognizes by parsing it
 * as `{session_id, created_at_ms, agent_loop_version, message_count}` (extra fields ignored).
 *
 * We add `file_bytes`, the file length at which `message_count` was true, and pad the line with
 * spaces to a fixed width (serde accepts trailing whitespace). The fixed width lets every flush
 * rewrite the header in place after appending, instead of rewriting the file; `file_bytes` tells
 * on open whether the header is current or a crash left lines after it that need counting.
 *
 * Our headers also say where the file's lines sit in the session: `first_seq` (the first kept
 * seq, above 0 once trimmed) and, for a fork, its lineage (`parent_session_id`, `parent_seq`)
 * and `pieces`, the shared files holding its messages before its own lines. `message_count`
 * stays the number of message lines in this file, which is what motosan reads.
 */
export interface SessionHeader {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  messageCount: number;
  /** Present only in headers this server wrote. */
  fileBytes?: number;
  /** The session's first kept seq (0 when absent). */
  firstSeq?: number;
  /** The session it was forked from, and at which seq. */
  parent?: { sessionId: string; seq: number };
  /** The linked files holding the session's messages before this file's own lines, in order. */
  pieces?: Piece[];
}

/**
 * Messages [from, to) of a fork, held in a file hard-linked from the session it was forked from
 * (`<name>.jsonl` and its index `<name>.idx` in the fork's pieces directory): the linked file's
 * record i has seq `base + i`.
 */
export interface Piece {
  name: string;
  base: number;
  from: number;
  to: number;
}

/** The seq of a file's first own line: after its pieces, or its first kept seq. */
export function ownBase(header: Pick<SessionHeader, "firstSeq" | "pieces">): number {
  return header.pieces?.at(-1)?.to ?? header.firstSeq ?? 0;
}

/** Room for both counters to grow from one digit to twenty (2^64) without widening the line. */
const COUNTER_ROOM = 2 * 19;

/** The padded width (without the newline) for a new file's header. */
export function headerWidthFor(header: SessionHeader): number {
  return headerJson({ ...header, messageCount: 0, fileBytes: 0 }).length + COUNTER_ROOM;
}

/** The header line, padded to `width` and newline-terminated, as bytes. */
export function renderHeader(header: SessionHeader, width: number): Buffer {
  const json = headerJson(header);
  if (json.length > width) {
    throw new Error(`header of ${header.sessionId} needs ${json.length} bytes, has ${width}`);
  }
  return Buffer.from(`${json.padEnd(width, " ")}\n`, "utf8");
}

/** Parses line 1 the way motosan's reader does: a header, or undefined when it is a message. */
export function parseHeader(line: string): SessionHeader | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const fields = value as Record<string, unknown>;
  const { session_id, created_at_ms, agent_loop_version, message_count, file_bytes, first_seq } =
    fields;
  if (
    typeof session_id !== "string" ||
    !isCount(created_at_ms) ||
    typeof agent_loop_version !== "string" ||
    !isCount(message_count)
  ) {
    return undefined;
  }
  return {
    sessionId: session_id,
    createdAtMs: created_at_ms,
    agentLoopVersion: agent_loop_version,
    messageCount: message_count,
    ...(isCount(file_bytes) ? { fileBytes: file_bytes } : {}),
    ...(isCount(first_seq) ? { firstSeq: first_seq } : {}),
    ...lineageOf(fields),
  };
}

/** A fork's lineage and pieces from a parsed header; nothing when they are absent or malformed. */
function lineageOf(fields: Record<string, unknown>): Pick<SessionHeader, "parent" | "pieces"> {
  const { parent_session_id, parent_seq, pieces } = fields;
  if (typeof parent_session_id !== "string" || !isCount(parent_seq)) return {};
  const parent = { sessionId: parent_session_id, seq: parent_seq };
  if (!Array.isArray(pieces) || !pieces.every(isPiece)) return { parent };
  return {
    parent,
    pieces: pieces.map(({ name, base, from, to }) => ({ name, base, from, to })),
  };
}

function isPiece(value: unknown): value is Piece {
  if (typeof value !== "object" || value === null) return false;
  const { name, base, from, to } = value as Record<string, unknown>;
  return (
    typeof name === "string" &&
    /^[0-9]+$/.test(name) &&
    isCount(base) &&
    isCount(from) &&
    isCount(to) &&
    base <= from &&
    from < to
  );
}

function headerJson(header: SessionHeader): string {
  return JSON.stringify({
    session_id: header.sessionId,
    created_at_ms: header.createdAtMs,
    agent_loop_version: header.agentLoopVersion,
    message_count: header.messageCount,
    file_bytes: header.fileBytes ?? 0,
    first_seq: header.firstSeq ?? 0,
    ...(header.parent
      ? { parent_session_id: header.parent.sessionId, parent_seq: header.parent.seq }
      : {}),
    ...(header.pieces?.length ? { pieces: header.pieces } : {}),
  });
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
