/**
 * Session ids in sorted order, for paging through List without reading the directory or sorting
 * on every call. Inserting and removing cost a binary search and an array shift.
 */
export class SortedIds {
  private readonly ids: string[];

  constructor(ids: Iterable<string>) {
    this.ids = [...ids].sort();
  }

  get size(): number {
    return this.ids.length;
  }

  /** Every id, in order (read it at once: it changes with the ids). */
  all(): Iterable<string> {
    return this.ids;
  }

  has(id: string): boolean {
    return this.ids[this.lowerBound(id)] === id;
  }

  add(id: string): void {
    const index = this.lowerBound(id);
    if (this.ids[index] !== id) this.ids.splice(index, 0, id);
  }

  delete(id: string): boolean {
    const index = this.lowerBound(id);
    if (this.ids[index] !== id) return false;
    this.ids.splice(index, 1);
    return true;
  }

  /** Up to `limit` ids that start with `prefix` and sort after `after`, in order. */
  page(prefix: string, after: string, limit: number): string[] {
    const page: string[] = [];
    const from = after >= prefix ? this.upperBound(after) : this.lowerBound(prefix);
    for (let index = from; index < this.ids.length && page.length < limit; index++) {
      const id = this.ids[index] as string;
      if (!id.startsWith(prefix)) break;
      page.push(id);
    }
    return page;
  }

  /** The first index whose id is not less than `id`. */
  private lowerBound(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.ids[middle] as string) < id) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The first index whose id is greater than `id`. */
  private upperBound(id: string): number {
    const index = this.lowerBound(id);
    return this.ids[index] === id ? index + 1 : index;
  }
}
