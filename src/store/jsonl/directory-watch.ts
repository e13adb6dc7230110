import { type FSWatcher, watch } from "node:fs";
import type { Logger } from "pino";

/** What happened to an entry: created, renamed or removed, or its content changed. */
export type EntryEvent = "rename" | "change";

/**
 * Tells the storage when an entry of the data directory is created, renamed or removed, or a
 * file's content changes, by anyone (inotify on Linux), so that a session file that appears
 * while the server runs is listed, and one that is deleted, replaced or appended to is noticed
 * (the server's own writes cause most content changes: the storage tells them apart). When the
 * watch fails (an inotify limit, say), `onLost` is called once and the storage falls back to
 * reading the directory on every List.
 */
export class DirectoryWatch {
  readonly #watcher: FSWatcher | undefined;

  constructor(
    directory: string,
    onEntry: (name: string, event: EntryEvent) => void,
    onLost: () => void,
    log: Logger,
  ) {
    let lost = false;
    const lose = (error: unknown) => {
      if (lost) return;
      lost = true;
      log.warn(
        { err: error, directory },
        "cannot watch the data directory; List reads the directory on every call",
      );
      onLost();
    };
    try {
      this.#watcher = watch(directory, { persistent: false }, (event, name) => {
        if (typeof name === "string") onEntry(name, event);
      });
      this.#watcher.on("error", lose);
    } catch (error) {
      lose(error);
    }
  }

  close(): void {
    this.#watcher?.close();
  }
}
