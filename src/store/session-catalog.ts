import { type Labels, matchesSelector, type Selector } from "../labels.js";
import type { ListCursor, ListOrder, ListQuery } from "./storage.js";

/** What a listing needs to know of a session. */
export interface CatalogEntry {
  sessionId: string;
  updatedAtMs: number;
  labels: Labels;
}

/**
 * Every session of a tenant that a backend holding them in one process lists from: their ids,
 * update times and labels, with an index of label values so that a selector naming one
 * (`user=alice`, `tier in (a,b)`) lists from the sessions that have it, not from every session.
 */
export class SessionCatalog {
  readonly #entries = new Map<string, CatalogEntry>();
  /** `key=value` → the ids of the sessions with that label. */
  readonly #withLabel = new Map<string, Set<string>>();

  get size(): number {
    return this.#entries.size;
  }

  has(sessionId: string): boolean {
    return this.#entries.has(sessionId);
  }

  get(sessionId: string): CatalogEntry | undefined {
    return this.#entries.get(sessionId);
  }

  /** Adds a session or replaces what is known of it. */
  set(entry: CatalogEntry): void {
    this.remove(entry.sessionId);
    this.#entries.set(entry.sessionId, entry);
    for (const [key, value] of Object.entries(entry.labels)) {
      const name = labelName(key, value);
      let ids = this.#withLabel.get(name);
      if (!ids) {
        ids = new Set();
        this.#withLabel.set(name, ids);
      }
      ids.add(entry.sessionId);
    }
  }

  /** Records a new update time (an append), keeping the labels. */
  touch(sessionId: string, updatedAtMs: number): void {
    const entry = this.#entries.get(sessionId);
    if (entry) this.#entries.set(sessionId, { ...entry, updatedAtMs });
  }

  remove(sessionId: string): void {
    const entry = this.#entries.get(sessionId);
    if (!entry) return;
    this.#entries.delete(sessionId);
    for (const [key, value] of Object.entries(entry.labels)) {
      const name = labelName(key, value);
      const ids = this.#withLabel.get(name);
      ids?.delete(sessionId);
      if (ids?.size === 0) this.#withLabel.delete(name);
    }
  }

  /** The ids of one page of `query`, in its order. */
  list(query: ListQuery): string[] {
    const { prefix, selector, order, after, limit } = query;
    const matching: CatalogEntry[] = [];
    for (const entry of this.#candidates(selector)) {
      if (
        entry.sessionId.startsWith(prefix) &&
        (after === undefined || isAfter(entry, after, order)) &&
        matchesSelector(entry.labels, selector)
      ) {
        matching.push(entry);
      }
    }
    return firstInOrder(matching, order, limit).map((entry) => entry.sessionId);
  }

  /**
   * The sessions a selector can match: those with one of the values its most selective `in`
   * requirement names, or every session when it has none.
   */
  *#candidates(selector: Selector): Iterable<CatalogEntry> {
    let narrowest: string[] | undefined;
    let narrowestSize = Number.POSITIVE_INFINITY;
    for (const requirement of selector) {
      if (requirement.op !== "in") continue;
      const names = requirement.values.map((value) => labelName(requirement.key, value));
      const size = names.reduce((sum, name) => sum + (this.#withLabel.get(name)?.size ?? 0), 0);
      if (size < narrowestSize) {
        narrowest = names;
        narrowestSize = size;
      }
    }
    if (!narrowest) {
      yield* this.#entries.values();
      return;
    }
    for (const name of narrowest) {
      for (const id of this.#withLabel.get(name) ?? []) {
        const entry = this.#entries.get(id);
        if (entry) yield entry;
      }
    }
  }
}

/** Whether `entry` comes after `cursor` in `order`. */
export function isAfter(entry: ListCursor, cursor: ListCursor, order: ListOrder): boolean {
  return compareInOrder(order)(entry, cursor) > 0;
}

/** The comparison that sorts sessions in `order`: by id, or most recently updated first. */
export function compareInOrder(order: ListOrder): (a: ListCursor, b: ListCursor) => number {
  const byId = (a: ListCursor, b: ListCursor) =>
    a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0;
  if (order === "id") return byId;
  return (a, b) => b.updatedAtMs - a.updatedAtMs || byId(a, b);
}

/**
 * The first `limit` of `entries` in `order`. A page is small beside the sessions that match, so
 * it keeps the best `limit` as it goes (sorting them, not all).
 */
export function firstInOrder<T extends ListCursor>(
  entries: readonly T[],
  order: ListOrder,
  limit: number,
): T[] {
  const compare = compareInOrder(order);
  if (entries.length <= limit * 4) return [...entries].sort(compare).slice(0, limit);
  let best: T[] = [];
  /** The last of the best `limit` at the latest cut: nothing after it can make the page. */
  let threshold: T | undefined;
  for (const entry of entries) {
    if (threshold && compare(entry, threshold) >= 0) continue;
    best.push(entry);
    if (best.length >= limit * 2) {
      best = best.sort(compare).slice(0, limit);
      threshold = best[limit - 1];
    }
  }
  return best.sort(compare).slice(0, limit);
}

function labelName(key: string, value: string): string {
  return `${key}=${value}`;
}
