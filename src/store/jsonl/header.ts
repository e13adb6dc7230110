/**
 * Line 1 of a session file: motosan's session header, which its reader recognizes by parsing it
 * as `{session_id, created_at_ms, agent_loop_version, message_count}` (extra fields ignored).
 *
 * We add `file_bytes`, the file length at which `message_count` was true, and pad the line with
 * spaces to a fixed width (serde accepts trailing whitespace). The fixed width lets every flush
 * rewrite the header in place after appending, instead of rewriting the file; `file_bytes` tells
 * on open whether the header is current or a crash left lines after it that need counting.
 */
export interface SessionHeader {
  sessionId: string;
  createdAtMs: number;
  agentLoopVersion: string;
  messageCount: number;
  /** Present only in headers this server wrote. */
  fileBytes?: number;
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
  const { session_id, created_at_ms, agent_loop_version, message_count, file_bytes } = fields;
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
  };
}

function headerJson(header: SessionHeader): string {
  return JSON.stringify({
    session_id: header.sessionId,
    created_at_ms: header.createdAtMs,
    agent_loop_version: header.agentLoopVersion,
    message_count: header.messageCount,
    file_bytes: header.fileBytes ?? 0,
  });
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
