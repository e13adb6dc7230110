import { constants } from "node:fs";
import { type FileHandle, open, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { Code, SessionStoreError } from "../../errors.js";
import {
  isLabelKey,
  isLabelValue,
  type Labels,
  MAX_LABEL_BYTES,
  sortedLabels,
} from "../../labels.js";
import { isValidSessionId } from "../../session-id.js";
import {
  coalesce,
  describeCause,
  isNotFound,
  OUT_OF_SPACE,
  syncDirectory,
  writeFully,
} from "./file-io.js";

/** A session's labels and how many times they changed. */
export interface StoredLabels {
  labels: Labels;
  revision: number;
}

/** What a session never labelled has. */
export const NO_LABELS: StoredLabels = { labels: {}, revision: 0 };

const SUFFIX = ".json";
/** More than a sidecar of the largest labels allowed takes (MAX_LABEL_BYTES, quoted, and the rest). */
const MAX_SIDECAR_BYTES = 4 * MAX_LABEL_BYTES;

/** Reads a sidecar file without following a link. */
const READ = constants.O_RDONLY | constants.O_NOFOLLOW;
/** Writes a temporary file, never through a link. */
const WRITE_TEMPORARY =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/**
 * The sessions' labels, one sidecar file per labelled session, `<id>.json` in the tenant
 * directory's `.sessionstore/labels/`: `{"session_id", "created_at_ms", "revision", "labels"}`.
 * The session's `.jsonl` is never touched, so motosan reads it as before and the header is still
 * rewritten in place. A sidecar is replaced atomically (a temporary file, fsynced, renamed over
 * it, the directory fsynced): after a crash a session has its old labels or its new ones.
 *
 * A sidecar belongs to the session file it was written for, known by its creation time: one left
 * behind (a crash between deleting a session's file and its sidecar, a file deleted by hand) is
 * never applied to another session of that id, and is removed when the directory is opened.
 *
 * Changes of one session's sidecar run one at a time (`serially`), so a check of the revision
 * and the write it guards are one step.
 */
export class LabelFiles {
  readonly #directory: string;
  readonly #log: Logger;
  readonly #syncDirectory: () => Promise<void>;
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(directory: string, log: Logger) {
    this.#directory = directory;
    this.#log = log;
    this.#syncDirectory = coalesce(() => syncDirectory(directory));
  }

  /**
   * Runs `task` once every earlier task of `sessionId` is done, and before any later one starts.
   */
  serially<T>(sessionId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(sessionId);
    const run = previous ? previous.then(task, task) : task();
    const settled = run.catch(() => undefined);
    this.#queues.set(sessionId, settled);
    void settled.then(() => {
      if (this.#queues.get(sessionId) === settled) this.#queues.delete(sessionId);
    });
    return run;
  }

  /**
   * The labels of a session whose file was created at `createdAtMs`: none when it has no
   * sidecar, or one written for another file of that id, or one that is not what the server
   * writes (logged).
   */
  async read(sessionId: string, createdAtMs: number): Promise<StoredLabels> {
    const stored = await this.#readFile(sessionId);
    return stored && stored.createdAtMs === createdAtMs ? stored.labels : NO_LABELS;
  }

  /**
   * The labels in a session's sidecar, whichever file it was written for (a listing's first
   * guess, checked when the session is opened).
   */
  async peek(sessionId: string): Promise<StoredLabels> {
    return (await this.#readFile(sessionId))?.labels ?? NO_LABELS;
  }

  /**
   * Makes `labels` the labels of the session whose file was created at `createdAtMs`, durably;
   * no labels at all removes its sidecar. Throws a LabelsNotWritten saying whether the new
   * labels may be on disk all the same.
   */
  async write(sessionId: string, createdAtMs: number, labels: StoredLabels): Promise<void> {
    if (labels.revision === 0) {
      await this.remove(sessionId).catch((error: unknown) => {
        throw new LabelsNotWritten(error, false);
      });
      return;
    }
    const temporary = join(this.#directory, `.${sessionId}${SUFFIX}.tmp`);
    const text = `${JSON.stringify({
      session_id: sessionId,
      created_at_ms: createdAtMs,
      revision: labels.revision,
      labels: labels.labels,
    })}\n`;
    let renamed = false;
    try {
      const handle = await open(temporary, WRITE_TEMPORARY, 0o644);
      try {
        await writeFully(handle, Buffer.from(text, "utf8"), 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.#path(sessionId));
      renamed = true;
      await this.#syncDirectory();
    } catch (error) {
      if (!renamed) await unlink(temporary).catch(() => undefined);
      throw new LabelsNotWritten(error, renamed);
    }
  }

  /** Removes a session's sidecar, durably; resolves to whether there was one. */
  async remove(sessionId: string): Promise<boolean> {
    try {
      await unlink(this.#path(sessionId));
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    await this.#syncDirectory();
    return true;
  }

  /** The ids of the sessions that have a sidecar. */
  async sessionIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const name of await readdir(this.#directory)) {
      const id = sidecarId(name);
      if (id !== undefined) ids.add(id);
    }
    return ids;
  }

  /**
   * Removes the sidecars of sessions that have no file (left by a crash in a delete, or by a
   * file deleted by hand) and temporary files a crash left; for a directory no call uses yet.
   */
  async removeOrphans(hasSession: (sessionId: string) => boolean): Promise<void> {
    let removed = 0;
    for (const name of await readdir(this.#directory)) {
      const id = sidecarId(name);
      const orphan = id === undefined ? name.endsWith(".tmp") : !hasSession(id);
      if (!orphan) continue;
      await unlink(join(this.#directory, name)).catch(() => undefined);
      removed++;
    }
    if (removed > 0) {
      await this.#syncDirectory();
      this.#log.info({ removed }, "removed labels of sessions that no longer exist");
    }
  }

  #path(sessionId: string): string {
    return join(this.#directory, `${sessionId}${SUFFIX}`);
  }

  async #readFile(
    sessionId: string,
  ): Promise<{ createdAtMs: number; labels: StoredLabels } | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.#path(sessionId), READ);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    // One read (no stat): a catalog built after a start reads every sidecar.
    const buffer = Buffer.allocUnsafe(MAX_SIDECAR_BYTES + 1);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, buffer.length, 0));
    } finally {
      await handle.close();
    }
    const parsed =
      bytesRead > MAX_SIDECAR_BYTES
        ? undefined
        : parseSidecar(sessionId, buffer.toString("utf8", 0, bytesRead));
    if (!parsed) {
      this.#log.error(
        { sessionId, file: this.#path(sessionId) },
        "the labels file of the session is not what the server writes; the session is served without labels until they are set again",
      );
    }
    return parsed;
  }
}

/**
 * A sidecar that could not be written; `mayBeStored` when it was renamed into place, so that
 * the labels on disk (and after a restart) may be the new ones.
 */
export class LabelsNotWritten extends Error {
  constructor(
    override readonly cause: unknown,
    readonly mayBeStored: boolean,
  ) {
    super(`the labels could not be written (${describeCause(cause)})`);
  }
}

/** The caller-facing error for labels that could not be written; never a server path. */
export function labelsFailure(sessionId: string, error: LabelsNotWritten): SessionStoreError {
  const errno = (error.cause as NodeJS.ErrnoException).code ?? "";
  const advice = error.mayBeStored
    ? "they may have been changed all the same: read the session's labels before changing them again"
    : "they were not changed; retry later";
  return new SessionStoreError(
    OUT_OF_SPACE.has(errno) ? Code.ResourceExhausted : Code.Unavailable,
    `storage failed to write the labels of session ${sessionId} (${describeCause(error.cause)}); ${advice}`,
    { cause: error.cause },
  );
}

function sidecarId(name: string): string | undefined {
  if (!name.endsWith(SUFFIX)) return undefined;
  const id = name.slice(0, -SUFFIX.length);
  return isValidSessionId(id) ? id : undefined;
}

function parseSidecar(
  sessionId: string,
  text: string,
): { createdAtMs: number; labels: StoredLabels } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { session_id, created_at_ms, revision, labels } = value as Record<string, unknown>;
  if (
    session_id !== sessionId ||
    !Number.isSafeInteger(created_at_ms) ||
    !Number.isSafeInteger(revision) ||
    (revision as number) < 1 ||
    typeof labels !== "object" ||
    labels === null ||
    !Object.entries(labels).every(
      ([key, label]) => isLabelKey(key) && typeof label === "string" && isLabelValue(label),
    )
  ) {
    return undefined;
  }
  return {
    createdAtMs: created_at_ms as number,
    labels: { labels: sortedLabels(labels as Labels), revision: revision as number },
  };
}
