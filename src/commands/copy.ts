import { SingleBar } from "cli-progress";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../errors.js";
import {
  listByIdQuery,
  type SessionMeta,
  type SessionStorage,
  type StorageBackend,
} from "../store/storage.js";

/** What a copy did, for its summary. */
export interface CopySummary {
  sessions: number;
  /** Messages the target did not have and got. */
  copied: number;
  /** Messages the target had already (an earlier, interrupted copy), recognised and skipped. */
  present: number;
  /** Sessions whose messages in the target differ from the source's: left as they are. */
  conflicts: string[];
  /** Sessions with no message: a session exists once it has one, so there is nothing to copy. */
  empty: string[];
  ms: number;
}

/** Sessions listed per page of the source. */
const LIST_PAGE = 500;

/**
 * Copies every session of every tenant of `source` to the same tenant of `target`, byte for
 * byte, with its creation time, labels and seqs (a trimmed session's start). A fork becomes a
 * whole session of its own in the target (its messages are copied, not shared; its lineage
 * fields are not kept). Each page read from the source is appended with `expected_seq`
 * at its seq, so the target recognises what it holds already: a copy interrupted and run again
 * resumes where it stopped and stores nothing twice. A session whose target differs is
 * reported (as `tenant/session_id` outside the tenant ""), never overwritten. Both are open.
 */
export async function copySessions(
  source: StorageBackend,
  target: StorageBackend,
  progress: CopyProgress,
): Promise<CopySummary> {
  const started = Date.now();
  const summary: CopySummary = {
    sessions: 0,
    copied: 0,
    present: 0,
    conflicts: [],
    empty: [],
    ms: 0,
  };
  const tenants = await source.tenants();
  let total = 0;
  for (const tenant of tenants) total += await countSessions(source.tenant(tenant));
  progress.start(total);
  for (const tenant of tenants) {
    const from = source.tenant(tenant);
    const to = target.tenant(tenant);
    const name = (sessionId: string) => (tenant === "" ? sessionId : `${tenant}/${sessionId}`);
    for (let after = ""; ; ) {
      const page = await from.list(listByIdQuery("", after, LIST_PAGE));
      if (page.length === 0) break;
      for (const meta of page) {
        if (meta.messageCount === 0) summary.empty.push(name(meta.sessionId));
        else if (!(await copySession(from, to, meta, summary)))
          summary.conflicts.push(name(meta.sessionId));
        summary.sessions++;
        progress.update(summary.sessions, summary.copied + summary.present);
      }
      after = (page.at(-1) as SessionMeta).sessionId;
    }
    await to.flush();
  }
  progress.stop();
  summary.ms = Date.now() - started;
  return summary;
}

/** Copies one session; resolves to false when the target's differs (nothing is changed then). */
async function copySession(
  source: SessionStorage,
  target: SessionStorage,
  meta: SessionMeta,
  summary: CopySummary,
): Promise<boolean> {
  const { sessionId } = meta;
  let lengthBefore = (await target.meta(sessionId))?.messageCount ?? 0;
  try {
    for await (const page of source.read(sessionId, { fromSeq: 0, limit: 0, last: false })) {
      const { ack } = await target.append(sessionId, page.messages, {
        expectedSeq: page.firstSeq,
        sync: false,
        createdAtMs: meta.createdAtMs,
        labels: meta.labels,
        firstSeq: meta.firstSeq,
      });
      const { nextSeq } = await ack;
      const end = page.firstSeq + page.messages.length;
      const alreadyThere = Math.max(0, Math.min(lengthBefore, end) - page.firstSeq);
      summary.present += alreadyThere;
      summary.copied += page.messages.length - alreadyThere;
      lengthBefore = Math.max(lengthBefore, nextSeq);
    }
    return true;
  } catch (error) {
    if (error instanceof SessionStoreError && error.code === Code.Aborted) return false;
    throw error;
  }
}

async function countSessions(storage: SessionStorage): Promise<number> {
  let count = 0;
  for (let after = ""; ; ) {
    const page = await storage.list(listByIdQuery("", after, 1000));
    if (page.length === 0) return count;
    count += page.length;
    after = (page.at(-1) as SessionMeta).sessionId;
  }
}

/** Where a copy reports how far it got: a progress bar on a terminal, nothing when piped. */
export interface CopyProgress {
  start(sessions: number): void;
  update(sessions: number, messages: number): void;
  stop(): void;
}

/** A progress bar with counts, rate and ETA on a terminal (stderr); silent otherwise. */
export function terminalProgress(
  stream: NodeJS.WriteStream = process.stderr,
  verb = "copying",
): CopyProgress {
  if (!stream.isTTY) return { start() {}, update() {}, stop() {} };
  const bar = new SingleBar({
    stream,
    format: `${verb} |{bar}| {value}/{total} sessions, {messages} messages, {rate} sessions/s, ETA {eta_formatted}`,
    hideCursor: true,
  });
  let started = Date.now();
  return {
    start(sessions) {
      started = Date.now();
      bar.start(sessions, 0, { messages: 0, rate: "0" });
    },
    update(sessions, messages) {
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      bar.update(sessions, { messages, rate: (sessions / seconds).toFixed(1) });
    },
    stop: () => bar.stop(),
  };
}

/** The copy's summary as a person reads it. */
export function describeSummary(summary: CopySummary): string {
  const lines = [
    `copied ${summary.sessions} sessions in ${(summary.ms / 1000).toFixed(1)} s: ` +
      `${summary.copied} messages copied, ${summary.present} already there`,
  ];
  if (summary.empty.length > 0) {
    lines.push(
      `${summary.empty.length} sessions hold no message and were not created in the target: ${summary.empty.slice(0, 20).join(", ")}`,
    );
  }
  if (summary.conflicts.length > 0) {
    lines.push(
      `${summary.conflicts.length} sessions differ in the target and were left as they are: ${summary.conflicts.slice(0, 20).join(", ")}${summary.conflicts.length > 20 ? ", ..." : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Used by the CLI: opens both, copies, closes both. */
export async function runCopy(
  open: { source: StorageBackend; target: StorageBackend },
  log: Logger,
): Promise<CopySummary> {
  await open.source.open();
  try {
    await open.target.open();
    try {
      return await copySessions(open.source, open.target, terminalProgress());
    } finally {
      await open.target.close();
    }
  } finally {
    await open.source.close();
    log.debug("copy done");
  }
}
