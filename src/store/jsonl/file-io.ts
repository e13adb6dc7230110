import { execFile } from "node:child_process";
import { type FileHandle, open } from "node:fs/promises";
import { promisify } from "node:util";
import { Code, SessionStoreError } from "../../errors.js";

/** Writes all of `data` at `position` (a single write may be short, e.g. on a nearly full disk). */
export async function writeFully(
  handle: FileHandle,
  data: Buffer,
  position: number,
): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(
      data,
      written,
      data.length - written,
      position + written,
    );
    written += bytesWritten;
  }
}

/** Makes a directory's entries durable (a new or renamed file survives a crash only after this). */
export async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * Flushes the file system holding `path` to disk (syncfs(2), through coreutils' `sync -f`, as
 * Node has no binding for it).
 */
export async function syncFileSystem(path: string): Promise<void> {
  await promisify(execFile)("sync", ["-f", path]);
}

const OUT_OF_SPACE = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

/**
 * The caller-facing error for a failed storage operation: RESOURCE_EXHAUSTED when the disk or a
 * quota is full, UNAVAILABLE otherwise; both mean nothing of the operation was stored and it is
 * safe to retry.
 */
export function storageFailure(
  action: string,
  sessionId: string,
  cause: unknown,
): SessionStoreError {
  const errno = (cause as NodeJS.ErrnoException).code ?? "";
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new SessionStoreError(
    OUT_OF_SPACE.has(errno) ? Code.ResourceExhausted : Code.Unavailable,
    `storage failed to ${action} session ${sessionId}: ${reason}; nothing of it was stored, retry later`,
    { cause },
  );
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * Wraps an idempotent action (an fsync) so that concurrent callers share runs: a call made while
 * one runs waits for the next run, which starts when the current one ends and serves every call
 * that arrived meanwhile (group commit).
 */
export function coalesce(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const run = action().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    if (!running) return start();
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return start();
      });
    return queued;
  };
}
