import { type FileHandle, open } from "node:fs/promises";

interface PooledHandle {
  handle: Promise<FileHandle>;
  users: number;
  /** Set when the file was deleted or replaced: close as soon as the last user is done. */
  discarded: boolean;
}

/** A handle borrowed from the pool; give it back with `release` when done. */
export interface HandleLease {
  handle: FileHandle;
  release(): void;
}

/**
 * Keeps at most `capacity` idle file handles open, closing the least recently used beyond that,
 * so that any number of sessions can be served under the process's file-descriptor limit.
 * Handles in use are never closed; while more than `capacity` are in use the pool grows.
 */
export class HandlePool {
  /** In least- to most-recently-used order (a Map iterates in insertion order). */
  private readonly pooled = new Map<string, PooledHandle>();

  constructor(private readonly capacity: number) {}

  /**
   * Borrows a handle on `path`, opened read-write; with `create`, the file is created and the
   * call fails with EEXIST when it exists.
   */
  async acquire(path: string, create = false): Promise<HandleLease> {
    let entry = this.pooled.get(path);
    if (entry) {
      this.pooled.delete(path);
    } else {
      entry = { handle: open(path, create ? "wx+" : "r+"), users: 0, discarded: false };
    }
    this.pooled.set(path, entry);
    entry.users++;
    const borrowed = entry;
    let handle: FileHandle;
    try {
      handle = await borrowed.handle;
    } catch (error) {
      // A failed open must not stay pooled: the next acquire tries again.
      borrowed.users--;
      if (this.pooled.get(path) === borrowed) this.pooled.delete(path);
      throw error;
    }
    let released = false;
    return {
      handle,
      release: () => {
        if (released) return;
        released = true;
        borrowed.users--;
        if (borrowed.discarded && borrowed.users === 0) void closeQuietly(borrowed);
        this.evictIdle();
      },
    };
  }

  /** Runs `task` with a borrowed handle on `path`. */
  async use<T>(path: string, task: (handle: FileHandle) => Promise<T>, create = false): Promise<T> {
    const lease = await this.acquire(path, create);
    try {
      return await task(lease.handle);
    } finally {
      lease.release();
    }
  }

  /** Forgets `path` (its file was deleted or replaced): its handle closes once unused. */
  discard(path: string): void {
    const entry = this.pooled.get(path);
    if (!entry) return;
    this.pooled.delete(path);
    entry.discarded = true;
    if (entry.users === 0) void closeQuietly(entry);
  }

  /** Closes every handle; call when no lease is out. */
  async closeAll(): Promise<void> {
    const entries = [...this.pooled.values()];
    this.pooled.clear();
    await Promise.all(entries.map(closeQuietly));
  }

  private evictIdle(): void {
    if (this.pooled.size <= this.capacity) return;
    for (const [path, entry] of this.pooled) {
      if (this.pooled.size <= this.capacity) break;
      if (entry.users === 0) {
        this.pooled.delete(path);
        void closeQuietly(entry);
      }
    }
  }
}

async function closeQuietly(entry: PooledHandle): Promise<void> {
  try {
    await (await entry.handle).close();
  } catch {
    // Opening failed (already reported to its user) or the handle is already closed.
  }
}
