import { readFile, stat } from "node:fs/promises";
import type { Logger } from "pino";

/** How often the files are checked for a change. */
const CHECK_INTERVAL_MS = 1000;

/**
 * Files read together (a certificate and its key, a JWKS) and read again when one of them
 * changes, as they do when an operator or a secret manager rotates them. Each reading goes
 * through `load`, which turns the contents into what the server uses or throws when they are
 * not usable; a reading that fails keeps the last good one (logged), so a rotation caught half
 * way (the certificate new, the key not yet) never leaves the server without credentials.
 *
 * A change is seen by polling the files' status (size, times, inode), which also catches what
 * file watches miss: a Kubernetes secret volume swaps a symbolic link to a new directory.
 */
export class WatchedFiles<T> {
  #current: T;
  #signature: string;
  /** The files' status when a reading last failed: said once, not at every check. */
  #failedSignature = "";
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  readonly #listeners = new Set<(value: T) => void>();

  private constructor(
    private readonly paths: readonly string[],
    private readonly load: (contents: Buffer[]) => T,
    private readonly what: string,
    private readonly log: Logger,
    first: { value: T; signature: string },
  ) {
    this.#current = first.value;
    this.#signature = first.signature;
  }

  /**
   * Reads the files and loads them; throws (naming `what` and the files: the operator reads it at
   * start) when they cannot be read or loaded. Then watches them until `close`.
   */
  static async open<T>(
    paths: readonly string[],
    load: (contents: Buffer[]) => T,
    what: string,
    log: Logger,
  ): Promise<WatchedFiles<T>> {
    let first: { value: T; signature: string };
    try {
      const signature = await signatureOf(paths);
      first = { value: load(await readAll(paths)), signature };
    } catch (error) {
      throw new Error(`cannot use ${what} (${paths.join(", ")}): ${(error as Error).message}`, {
        cause: error,
      });
    }
    const files = new WatchedFiles(paths, load, what, log, first);
    files.#timer = setInterval(() => void files.#check(), CHECK_INTERVAL_MS);
    files.#timer.unref();
    return files;
  }

  /** What the files held when last read successfully. */
  get current(): T {
    return this.#current;
  }

  /** Calls `listener` with each new reading. */
  onChange(listener: (value: T) => void): void {
    this.#listeners.add(listener);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const signature = await signatureOf(this.paths).catch(() => this.#signature);
      if (signature === this.#signature || signature === this.#failedSignature) return;
      let value: T;
      try {
        value = this.load(await readAll(this.paths));
      } catch (error) {
        // Caught mid-rotation, or a bad file: keep serving with the last good one until the
        // files change again.
        this.#failedSignature = signature;
        this.log.warn(
          { files: this.paths, reason: (error as Error).message },
          `${this.what} changed but cannot be used; still using the previous one`,
        );
        return;
      }
      this.#signature = signature;
      this.#current = value;
      this.log.info({ files: this.paths }, `${this.what} reloaded`);
      for (const listener of this.#listeners) listener(value);
    } finally {
      this.#checking = false;
    }
  }
}

function readAll(paths: readonly string[]): Promise<Buffer[]> {
  return Promise.all(paths.map((path) => readFile(path)));
}

/** What changes when a file's contents may have: through links, as the server reads it. */
async function signatureOf(paths: readonly string[]): Promise<string> {
  const stats = await Promise.all(paths.map((path) => stat(path, { bigint: true })));
  return stats.map((s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`).join("|");
}
