import { execFile } from "node:child_process";
import { type FileHandle, open } from "node:fs/promises";
import { promisify } from "node:util";
import { Code, SessionStoreError } from "../../errors.js";
import type { FailedOutcome } from "../storage.js";

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

export const OUT_OF_SPACE = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

/**
 * The caller-facing error for a failed storage operation: RESOURCE_EXHAUSTED when the disk or a
 * quota is full, UNAVAILABLE otherwise. It tells the truth about the request: either nothing of
 * it was stored (retry freely), or it may have been (resend it with expected_seq, which the
 * server recognises). It names the cause but never a path of the server's file system.
 */
export function storageFailure(
  action: string,
  sessionId: string,
  cause: unknown,
  outcome: FailedOutcome = "nothing stored",
): SessionStoreError {
  const errno = (cause as NodeJS.ErrnoException).code ?? "";
  const advice =
    outcome === "nothing stored"
      ? "nothing of this request was stored; retry later"
      : "this request may still be stored: resend it with expected_seq (or read the session's length first) so that it is stored once";
  return new SessionStoreError(
    OUT_OF_SPACE.has(errno) ? Code.ResourceExhausted : Code.Unavailable,
    `storage failed to ${action} session ${sessionId} (${describeCause(cause)}); ${advice}`,
    { cause },
  );
}

/**
 * A system error's code and description without the path Node appends ("ENOENT: no such file
 * or directory, open '/srv/data/x.jsonl'" becomes "ENOENT: no such file or directory").
 */
export function describeCause(cause: unknown): string {
  const { code, message } = cause as NodeJS.ErrnoException;
  if (typeof code === "string" && typeof message === "string" && message.startsWith(code)) {
    const comma = message.indexOf(", ");
    return comma === -1 ? message : message.slice(0, comma);
  }
  if (typeof code === "string") return code;
  return cause instanceof Error ? cause.message : String(cause);
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
