import { execFileSync } from "node:child_process";
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { headerWidthFor, renderHeader, type SessionHeader } from "../src/store/jsonl/header.js";
import { AGENT_LOOP_VERSION } from "../src/store/storage.js";

/** Bytes of lines gathered before each write while generating a large file. */
const WRITE_CHUNK_BYTES = 4 << 20;

/**
 * Writes a session file in the server's own layout (the fixed-width header of
 * src/store/jsonl/header.ts, then one message per line) directly, without the server: large
 * datasets are made in seconds. The file is fsynced, so that writing it back does not land on a
 * measurement.
 */
export function writeSessionFile(
  dataDir: string,
  sessionId: string,
  count: number,
  payloads: readonly string[],
): void {
  const header: SessionHeader = {
    sessionId,
    createdAtMs: Date.now(),
    agentLoopVersion: AGENT_LOOP_VERSION,
    messageCount: 0,
    fileBytes: 0,
  };
  const width = headerWidthFor(header);
  const fd = openSync(join(dataDir, `${sessionId}.jsonl`), "w");
  try {
    let end = width + 1;
    writeSync(fd, renderHeader(header, width), 0, width + 1, 0);
    let lines: string[] = [];
    let bytes = 0;
    const writeLines = () => {
      const data = Buffer.from(lines.join(""), "utf8");
      writeSync(fd, data, 0, data.length, end);
      end += data.length;
      lines = [];
      bytes = 0;
    };
    for (let seq = 0; seq < count; seq++) {
      const line = `${payloads[seq % payloads.length]}\n`;
      lines.push(line);
      bytes += line.length;
      if (bytes >= WRITE_CHUNK_BYTES) writeLines();
    }
    writeLines();
    writeSync(
      fd,
      renderHeader({ ...header, messageCount: count, fileBytes: end }, width),
      0,
      width + 1,
      0,
    );
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `sessions` small session files named `<prefix><number>` (zero-padded, so they sort in
 * order), `messagesEach` messages each, then syncs the file system once.
 */
export function writeManySessions(
  dataDir: string,
  prefix: string,
  sessions: number,
  messagesEach: number,
  payloads: readonly string[],
): void {
  mkdirSync(dataDir, { recursive: true });
  const digits = String(sessions - 1).length;
  const createdAtMs = Date.now();
  for (let index = 0; index < sessions; index++) {
    const sessionId = `${prefix}${String(index).padStart(digits, "0")}`;
    const header: SessionHeader = {
      sessionId,
      createdAtMs,
      agentLoopVersion: AGENT_LOOP_VERSION,
      messageCount: 0,
      fileBytes: 0,
    };
    const width = headerWidthFor(header);
    let body = "";
    for (let seq = 0; seq < messagesEach; seq++) {
      body += `${payloads[(index + seq) % payloads.length]}\n`;
    }
    const fileBytes = width + 1 + Buffer.byteLength(body, "utf8");
    const headerLine = renderHeader({ ...header, messageCount: messagesEach, fileBytes }, width);
    writeFileSync(
      join(dataDir, `${sessionId}.jsonl`),
      Buffer.concat([headerLine, Buffer.from(body)]),
    );
  }
  execFileSync("sync");
}
