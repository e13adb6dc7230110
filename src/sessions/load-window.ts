import { readStart } from "../store/log-bounds.js";
import { pagesOf } from "../store/read-range.js";
import type { SessionStorage } from "../store/storage.js";
import { ContextWindow } from "./context-window.js";
import { dialectOfLabels } from "./dialects.js";
import type { LoadedPage, LoadOptions } from "./session-service.js";

/** The first read back from the end takes this many messages; each next one twice as many. */
const FIRST_CHUNK = 256;
const MAX_CHUNK = 65_536;
/** A window up to this size is served from what choosing it read; a larger one is read again. */
const KEPT_BYTES = 8 << 20;

/**
 * A session's context window (LoadRequest.max_bytes, limit, whole_turns): chosen by reading the
 * session backwards from its end in growing chunks, so that only as much is read as the window
 * needs, then served in pages, the last reporting the calls left without a result.
 */
export async function* loadWindow(
  storage: SessionStorage,
  sessionId: string,
  options: LoadOptions,
): AsyncGenerator<LoadedPage> {
  const meta = await storage.meta(sessionId);
  if (!meta) return;
  const end = meta.messageCount;
  const start = readStart(sessionId, options.fromSeq, { firstSeq: meta.firstSeq, length: end });
  const window = new ContextWindow(
    {
      maxBytes: options.maxBytes,
      maxMessages: options.limit,
      wholeTurns: options.wholeTurns,
      dialect: dialectOfLabels(meta.labels),
    },
    end,
  );
  /** What was read, newest chunk first, while it is small enough to keep. */
  const chunks: Buffer[][] = [];
  let keptBytes = 0;
  let upper = end;
  let chunk = FIRST_CHUNK;
  let more = true;
  while (more && upper > start) {
    const from = Math.max(start, upper - chunk);
    const messages = await readAll(storage, sessionId, from, upper);
    for (let i = messages.length - 1; i >= 0 && more; i--) {
      more = window.offer(from + i, messages[i] as Buffer);
    }
    if (keptBytes <= KEPT_BYTES) {
      chunks.unshift(messages);
      for (const message of messages) keptBytes += message.length;
    }
    upper = from;
    chunk = Math.min(chunk * 2, MAX_CHUNK);
  }
  const choice = window.result();
  if (choice.start >= end) return;
  const pages =
    keptBytes <= KEPT_BYTES
      ? pagesOf(chunks.flat().slice(choice.start - upper), choice.start)
      : storage.read(sessionId, { fromSeq: choice.start, limit: end - choice.start, last: false });
  // One page behind, so that the last one can carry the dangling calls.
  let previous: LoadedPage | undefined;
  for await (const page of pages) {
    if (previous) yield previous;
    previous = page;
  }
  if (previous) {
    yield options.wholeTurns ? { ...previous, danglingCallIds: choice.danglingCallIds } : previous;
  }
}

/** Messages [from, to) of a session. */
async function readAll(
  storage: SessionStorage,
  sessionId: string,
  from: number,
  to: number,
): Promise<Buffer[]> {
  const messages: Buffer[] = [];
  for await (const page of storage.read(sessionId, {
    fromSeq: from,
    limit: to - from,
    last: false,
  })) {
    messages.push(...page.messages);
  }
  return messages;
}
