import { Code, SessionStoreError } from "../errors.js";

/**
 * A request of a chain that is not yet settled, as the backend that admitted it keeps it. The
 * chain calls these when the request before it settles.
 */
export interface ChainMember {
  /** Whether the request was acknowledged or failed. */
  readonly settled: boolean;
  /** The previous member was acknowledged: this one may now be, if nothing else holds it. */
  previousAcknowledged(): void;
  /** The previous member failed: this one fails too, and stores nothing. */
  previousFailed(error: SessionStoreError): void;
}

/**
 * The requests of one Append stream, in order. A stream ends at its first failed request, and
 * the requests after it get no acknowledgement, so none of them may be stored: a client that
 * resends them must not duplicate them. Requests are pipelined (the next is admitted while the
 * last waits for its fsync), so a failure can come after later requests were admitted, possibly
 * to other sessions. The chain makes them depend on each other: a member is acknowledged only
 * after the one before it, fails when that one fails, and once a member has failed the chain
 * refuses every later request.
 */
export class AppendChain {
  #failure: SessionStoreError | undefined;
  #last: ChainMember | undefined;

  /** The failure that ended the chain, if one did. */
  get failure(): SessionStoreError | undefined {
    return this.#failure;
  }

  /** Throws the error later requests get once the chain has failed. */
  checkOpen(): void {
    if (this.#failure) {
      throw new SessionStoreError(
        Code.Aborted,
        "an earlier request on this stream failed, so this one was not stored; " +
          `resend it after the failed one (${this.#failure.message})`,
      );
    }
  }

  /** Whether the chain's latest request is not yet settled (a new one must then wait for it). */
  get waiting(): boolean {
    return this.#last !== undefined && !this.#last.settled;
  }

  /** The chain's latest request, when it is not yet settled. */
  get unsettled(): ChainMember | undefined {
    return this.waiting ? this.#last : undefined;
  }

  /**
   * Adds an unsettled request; returns whether it must wait for the one before it (which will
   * then pass on its outcome).
   */
  add(member: ChainMember): boolean {
    const previous = this.#last;
    this.#last = member;
    if (!previous || previous.settled) return false;
    this.#followers.set(previous, member);
    return true;
  }

  /** A member was acknowledged: the next one may go on. */
  acknowledged(member: ChainMember): void {
    const next = this.#followers.get(member);
    if (next === undefined) return;
    this.#followers.delete(member);
    next.previousAcknowledged();
  }

  /** A member failed: the chain ends, and the next member fails with it. */
  failed(member: ChainMember, error: SessionStoreError): void {
    this.#failure ??= error;
    const next = this.#followers.get(member);
    if (next === undefined) return;
    this.#followers.delete(member);
    next.previousFailed(error);
  }

  /** Who follows each unsettled member. */
  readonly #followers = new Map<ChainMember, ChainMember>();
}

/**
 * The error of a request that fails because an earlier one of its stream failed after it was
 * taken: its own code is the earlier failure's, and it says what became of this request.
 */
export function followerError(
  sessionId: string,
  cause: SessionStoreError,
  stored: "nothing stored" | "maybe stored",
): SessionStoreError {
  const advice =
    stored === "nothing stored"
      ? "nothing of this request was stored; retry later"
      : "this request may still be stored: resend it with expected_seq (or read the session's length first) so that it is stored once";
  return new SessionStoreError(
    cause.code,
    `an earlier request on this stream failed (${cause.message}), so this request to session ${sessionId} was not acknowledged; ${advice}`,
  );
}
