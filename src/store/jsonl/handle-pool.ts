import { constants } from "node:fs";
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

/** How the pool opens a file that has no open handle. */
export interface OpenOptions {
  /** open(2) flags: OPEN_EXISTING by default. */
  flags?: number;
  /** Checks a newly opened handle (that it is still the file the caller knows); may throw. */
  verify?: (handle: FileHandle) => Promise<void>;
}

/** Opens an existing file read-write, refusing a symbolic link (ELOOP). */
export const OPEN_EXISTING = constants.O_RDWR | constants.O_NOFOLLOW;
/** Creates a file read-write; fails with EEXIST when the name exists (a link included). */
export const CREATE_NEW = OPEN_EXISTING | constants.O_CREAT | constants.O_EXCL;
/** Opens a file read-write, creating it when missing, never through a symbolic link. */
export const OPEN_OR_CREATE = OPEN_EXISTING | constants.O_CREAT;

/**
 * Keeps at most `capacity` file handles open, so that any number of sessions can be served under
 * the process's file-descriptor limit: idle handles are closed least recently used first, and when
 * all are in use, `acquire` waits for one to be released.
 */
export class HandlePool {
  /** In least- to most-recently-used order (a Map iterates in insertion order). */
  private readonly pooled = new Map<string, PooledHandle>();
  /** Handles open now, pooled or discarded but still in use. */
  private open = 0;
  private slotWaiters: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  /** Borrows a handle on `path`, opening it as `options` say when none is open. */
  async acquire(path: string, options: OpenOptions = {}): Promise<HandleLease> {
    let entry = this.pooled.get(path);
    while (!entry && this.open >= this.capacity && !this.evictOne()) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
      entry = this.pooled.get(path);
    }
    if (entry) {
      this.pooled.delete(path);
    } else {
      this.open++;
      const opening: PooledHandle = {
        handle: openVerified(path, options),
        users: 0,
        discarded: false,
      };
      // A failed open frees its slot and must not stay pooled: the next acquire tries again.
      opening.handle.catch(() => {
        if (this.pooled.get(path) === opening) this.pooled.delete(path);
        this.closed();
      });
      entry = opening;
    }
    this.pooled.set(path, entry);
    entry.users++;
    const borrowed = entry;
    let handle: FileHandle;
    try {
      handle = await borrowed.handle;
    } catch (error) {
      borrowed.users--;
      throw error;
    }
    let released = false;
    return {
      handle,
      release: () => {
        if (released) return;
        released = true;
        borrowed.users--;
        if (borrowed.discarded && borrowed.users === 0) void this.close(borrowed);
        this.evictIdle();
        this.slotWaiters.shift()?.();
      },
    };
  }

  /** Runs `task` with a borrowed handle on `path` (see `acquire`). */
  async use<T>(
    path: string,
    task: (handle: FileHandle) => Promise<T>,
    options: OpenOptions = {},
  ): Promise<T> {
    const lease = await this.acquire(path, options);
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
    if (entry.users === 0) void this.close(entry);
  }

  /** Closes every handle; call when no lease is out. */
  async closeAll(): Promise<void> {
    const entries = [...this.pooled.values()];
    this.pooled.clear();
    await Promise.all(entries.map((entry) => this.close(entry)));
  }

  private evictIdle(): void {
    while (this.pooled.size > this.capacity && this.evictOne()) {}
  }

  /** Closes the least recently used idle handle; false when every handle is in use. */
  private evictOne(): boolean {
    for (const [path, entry] of this.pooled) {
      if (entry.users === 0) {
        this.pooled.delete(path);
        void this.close(entry);
        return true;
      }
    }
    return false;
  }

  private async close(entry: PooledHandle): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await entry.handle;
    } catch {
      return; // the failed open already freed its slot
    }
    await handle.close().catch(() => undefined);
    this.closed();
  }

  private closed(): void {
    this.open--;
    this.slotWaiters.shift()?.();
  }
}

async function openVerified(path: string, options: OpenOptions): Promise<FileHandle> {
  const handle = await open(path, options.flags ?? OPEN_EXISTING, 0o644);
  try {
    await options.verify?.(handle);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  return handle;
}
