import { type Dialect, shapeOf } from "./dialects.js";

export interface WindowRule {
  /** At most this many bytes (UTF-8, as stored) of messages; 0: no bound. */
  maxBytes: number;
  /** At most this many messages; 0: no bound. */
  maxMessages: number;
  /**
   * The window starts where a person's turn does, and never with a tool result whose call is
   * outside it: what a model API accepts as a conversation.
   */
  wholeTurns: boolean;
  /** The session's dialect, when its labels fix one; detected per message otherwise. */
  dialect?: Dialect;
}

export interface WindowChoice {
  /** Seq of the window's first message; `end` when nothing fits. */
  start: number;
  /** With whole turns: ids of the calls in the window that have no result after them, in order. */
  danglingCallIds: string[];
}

/**
 * Chooses the newest window of a session that the rule allows, reading messages newest first
 * (`offer` each, from seq `end - 1` down, until it returns false), so that only as much of a
 * long session is read as the window needs.
 *
 * With `wholeTurns`, a start is valid at a turn-starting message when every tool result from it
 * on answers a call from it on; the window begins at the earliest valid start within the bounds,
 * or is empty when none is. Results are tracked from the end, so dangling calls are known too.
 */
export class ContextWindow {
  readonly #rule: WindowRule;
  readonly #end: number;
  #bytes = 0;
  #count = 0;
  /** The earliest message within the bounds so far. */
  #earliest: number;
  /** The earliest valid start so far (whole turns). */
  #earliestValid: number;
  #done = false;
  /** Results seen (from the end) whose calls have not been seen yet. */
  readonly #unanswered = new Map<string, number>();
  /** Calls seen with no result after them: seq and id, newest first. */
  readonly #dangling: { seq: number; id: string }[] = [];

  constructor(rule: WindowRule, end: number) {
    this.#rule = rule;
    this.#end = end;
    this.#earliest = end;
    this.#earliestValid = end;
  }

  /** Takes message `seq` (the one before the last offered); false once no earlier one matters. */
  offer(seq: number, message: Buffer): boolean {
    if (this.#done) return false;
    const { maxBytes, maxMessages } = this.#rule;
    const bytes = message.length;
    if (
      (maxBytes > 0 && this.#bytes + bytes > maxBytes) ||
      (maxMessages > 0 && this.#count >= maxMessages)
    ) {
      this.#done = true;
      return false;
    }
    this.#bytes += bytes;
    this.#count++;
    this.#earliest = seq;
    // Only whole turns need to look inside a message, and only they decode it to parse it.
    if (this.#rule.wholeTurns) this.#track(seq, message.toString("utf8"));
    return true;
  }

  /** The window chosen from what was offered. */
  result(): WindowChoice {
    const start = this.#rule.wholeTurns ? this.#earliestValid : this.#earliest;
    const danglingCallIds = this.#dangling
      .filter((call) => call.seq >= start && start < this.#end)
      .map((call) => call.id)
      .reverse();
    return { start, danglingCallIds };
  }

  #track(seq: number, text: string): void {
    const shape = shapeOf(text, this.#rule.dialect);
    for (const id of shape.results) this.#unanswered.set(id, (this.#unanswered.get(id) ?? 0) + 1);
    for (const id of [...shape.calls].reverse()) {
      const pending = this.#unanswered.get(id) ?? 0;
      if (pending === 0) this.#dangling.push({ seq, id });
      else if (pending === 1) this.#unanswered.delete(id);
      else this.#unanswered.set(id, pending - 1);
    }
    if (shape.startsTurn && this.#unanswered.size === 0) this.#earliestValid = seq;
  }
}
