import { lstat } from "node:fs/promises";
import { type CatalogEntry, SessionCatalog } from "../session-catalog.js";
import { type LabelFiles, NO_LABELS } from "./label-files.js";

/** What a tenant directory tells its catalog about its sessions. */
export interface CatalogSource {
  /** The ids of the session files in the directory now. */
  sessionIds(): Iterable<string>;
  /**
   * What is known of a session now: from its log when it is in use, "gone" when it has no file
   * (or is being deleted), undefined when only its file can tell.
   */
  known(sessionId: string): CatalogEntry | "gone" | undefined;
  /** The path of its `.jsonl` file. */
  filePath(sessionId: string): string;
  labels: LabelFiles;
}

/** Files looked at at once while the catalog is built. */
const SCAN_CONCURRENCY = 64;

/**
 * The SessionCatalog of one tenant directory (ids, update times, labels), for listings by
 * update time or by labels. It is built at first need from the directory: a stat of every
 * session file (its mtime is the update time its log reports when opened) and a read of every
 * labels sidecar, or what the log knows for a session in use. From then on it is kept current by
 * the directory (its logs' appends, label changes, creations and deletions, and files that
 * appear, change or vanish under the server), so a page costs what the sessions it can match
 * cost, not what every session does. Whatever it says of a session that is not in use is
 * checked when a listing opens it (TenantDirectory.list).
 */
export class DirectoryCatalog {
  readonly #source: CatalogSource;
  #catalog: SessionCatalog | undefined;
  #built: Promise<SessionCatalog> | undefined;

  constructor(source: CatalogSource) {
    this.#source = source;
  }

  /** The catalog, built first when it is not. */
  get(): Promise<SessionCatalog> {
    this.#built ??= this.#build();
    return this.#built;
  }

  /** Forgets the catalog (the directory can no longer be watched): the next `get` builds it anew. */
  invalidate(): void {
    this.#catalog = undefined;
    this.#built = undefined;
  }

  /** Records what is known of a session (it was opened, created or labelled). */
  set(entry: CatalogEntry): void {
    this.#catalog?.set(entry);
  }

  /** Records an append to a session. */
  touch(sessionId: string, updatedAtMs: number): void {
    this.#catalog?.touch(sessionId, updatedAtMs);
  }

  remove(sessionId: string): void {
    this.#catalog?.remove(sessionId);
  }

  /** Reads anew what the directory says of a session (its file appeared, changed or vanished). */
  async refresh(sessionId: string): Promise<void> {
    const catalog = this.#catalog;
    if (catalog) await this.#learn(catalog, sessionId, true);
  }

  async #build(): Promise<SessionCatalog> {
    const catalog = new SessionCatalog();
    // Changes made while the directory is read land in it already: what they say is newer.
    this.#catalog = catalog;
    try {
      const labelled = await this.#source.labels.sessionIds();
      const ids = [...this.#source.sessionIds()];
      let next = 0;
      const worker = async () => {
        while (next < ids.length) {
          const id = ids[next++] as string;
          if (!catalog.has(id)) await this.#learn(catalog, id, labelled.has(id));
        }
      };
      await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));
    } catch (error) {
      if (this.#catalog === catalog) this.invalidate();
      throw error;
    }
    return catalog;
  }

  /** Records a session as its log or, when it is not in use, its file and sidecar say. */
  async #learn(catalog: SessionCatalog, sessionId: string, labelled: boolean): Promise<void> {
    const { labels, filePath } = this.#source;
    const [stat, stored] = await Promise.all([
      lstat(filePath(sessionId)).catch(() => undefined),
      labelled ? labels.peek(sessionId).catch(() => NO_LABELS) : NO_LABELS,
    ]);
    if (this.#catalog !== catalog) return;
    const known = this.#source.known(sessionId);
    if (known === "gone" || (known === undefined && !stat?.isFile())) {
      catalog.remove(sessionId);
    } else {
      catalog.set(
        known ?? {
          sessionId,
          updatedAtMs: Math.round((stat as { mtimeMs: number }).mtimeMs),
          labels: stored.labels,
        },
      );
    }
  }
}
