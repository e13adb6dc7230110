/**
 * When a session's messages were written, per written batch, for retention by age: entry i says
 * that the messages [end of entry i - 1, end of entry i) were written at or before `times[i]`.
 * A message is acknowledged before it is written, so a write time is never earlier than the
 * message's own time: an age computed from it is never an overstatement, and a message younger
 * than some time is never counted older (see SessionStorage.firstSeqSince).
 *
 * Kept in `.sessionstore/index/<id>.times` (derived data, never fsynced), 16 bytes an entry,
 * little-endian: the batch's end seq and its time in ms, both as doubles. What a crash leaves
 * unreadable or missing is covered on open by the file's modification time (plus the lag of the
 * file system's clock), which no write to it is later than.
 */
export class AppendTimes {
  private constructor(
    private ends: number[],
    private times: number[],
  ) {}

  static readonly ENTRY_BYTES = 16;

  /** Times that say every message before `end` was written at or before `timeMs`. */
  static upTo(end: number, timeMs: number, firstSeq: number): AppendTimes {
    return end > firstSeq ? new AppendTimes([end], [timeMs]) : new AppendTimes([], []);
  }

  /**
   * The times of a file holding messages [firstSeq, length), read from `bytes`: entries past the
   * first that does not fit (a torn or stale sidecar) are dropped, and messages no entry covers
   * get `fallbackMs`, a time no write to the file is later than.
   */
  static decode(bytes: Buffer, firstSeq: number, length: number, fallbackMs: number): AppendTimes {
    const ends: number[] = [];
    const times: number[] = [];
    for (
      let offset = 0;
      offset + AppendTimes.ENTRY_BYTES <= bytes.length;
      offset += AppendTimes.ENTRY_BYTES
    ) {
      const end = bytes.readDoubleLE(offset);
      const time = bytes.readDoubleLE(offset + 8);
      const last = ends.length - 1;
      const fits =
        Number.isSafeInteger(end) &&
        end <= length &&
        end > (ends[last] ?? 0) &&
        time > 0 &&
        time >= (times[last] ?? 0);
      if (!fits) break;
      ends.push(end);
      times.push(time);
    }
    const covered = new AppendTimes(ends, times);
    covered.dropBefore(firstSeq);
    if (covered.end(firstSeq) < length) covered.note(length, fallbackMs);
    return covered;
  }

  clone(): AppendTimes {
    return new AppendTimes([...this.ends], [...this.times]);
  }

  /** The seq after the last message covered (`firstSeq` when none is). */
  end(firstSeq: number): number {
    return this.ends.at(-1) ?? firstSeq;
  }

  /**
   * Records that the messages up to `end` were written at `timeMs`; answers the entry to write
   * and where (one write of 16 bytes: a batch written in the same millisecond as the previous
   * one extends its entry).
   */
  note(end: number, timeMs: number): { offset: number; entry: Buffer } {
    const last = this.ends.length - 1;
    const time = Math.max(timeMs, this.times[last] ?? 0);
    let index = last;
    if (last >= 0 && this.times[last] === time) this.ends[last] = end;
    else {
      this.ends.push(end);
      this.times.push(time);
      index = last + 1;
    }
    return { offset: index * AppendTimes.ENTRY_BYTES, entry: this.entryBytes(index) };
  }

  /** Forgets the messages from `end` on (cut or rewound); answers the sidecar's new size. */
  cut(end: number): number {
    let keep = this.ends.findIndex((batchEnd) => batchEnd >= end);
    if (keep !== -1) {
      this.ends[keep] = end;
      keep++;
      this.ends.length = keep;
      this.times.length = keep;
    }
    return this.ends.length * AppendTimes.ENTRY_BYTES;
  }

  /** Forgets the messages before `firstSeq` (trimmed). */
  dropBefore(firstSeq: number): void {
    const first = this.ends.findIndex((batchEnd) => batchEnd > firstSeq);
    const drop = first === -1 ? this.ends.length : first;
    this.ends.splice(0, drop);
    this.times.splice(0, drop);
  }

  /**
   * The first seq of a batch written at or after `timeMs`, or the end of what is covered when
   * none was; never below `firstSeq`.
   */
  firstSince(timeMs: number, firstSeq: number): number {
    let low = 0;
    let high = this.times.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.times[middle] as number) >= timeMs) high = middle;
      else low = middle + 1;
    }
    return Math.max(firstSeq, low === 0 ? firstSeq : (this.ends[low - 1] as number));
  }

  /** The whole sidecar's bytes. */
  encode(): Buffer {
    return Buffer.concat(this.ends.map((_, index) => this.entryBytes(index)));
  }

  private entryBytes(index: number): Buffer {
    const bytes = Buffer.alloc(AppendTimes.ENTRY_BYTES);
    bytes.writeDoubleLE(this.ends[index] as number, 0);
    bytes.writeDoubleLE(this.times[index] as number, 8);
    return bytes;
  }
}
