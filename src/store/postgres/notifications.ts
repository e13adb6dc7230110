import pg from "pg";
import type { Logger } from "pino";
import type { SessionChange } from "../storage.js";

/** The channel sessions' changes are announced on (by the schema's functions, see migrations). */
export const CHANNEL = "sessionstore";

/** What a notification on CHANNEL carries. */
export interface ChangeNotice {
  /** "a": appended (or created by a fork); "d": deleted; "r": rewound to `q`. */
  k: "a" | "d" | "r";
  /** Tenant. */
  t: string;
  /** Session id. */
  s: string;
  /** The seq a rewind went back to. */
  q?: number;
}

/** How long a lost listening connection waits before it reconnects, at most. */
const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * One LISTEN connection per server, whatever the number of watchers: every replica hears every
 * session's changes at the commit that made them. When the connection drops, notifications may
 * be missed, so on reconnecting every session is announced as changed (watchers read again to
 * find out what is new); until then, watchers wait.
 */
export class ChangeListener {
  #client: pg.Client | undefined;
  #closed = false;
  #delayMs = 100;

  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly onChange: (tenant: string, sessionId: string, change: SessionChange) => void,
    /** Every session may have changed (after a reconnect). */
    private readonly onResync: () => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.connection);
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      try {
        const notice = JSON.parse(message.payload) as ChangeNotice;
        this.onChange(notice.t, notice.s, changeOf(notice));
      } catch (error) {
        this.log.warn({ err: error }, "ignoring a malformed change notification");
      }
    });
    client.on("error", (error) => {
      this.log.warn({ err: error }, "the change notification connection failed; reconnecting");
      this.#reconnectSoon(client);
    });
    client.on("end", () => this.#reconnectSoon(client));
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
    this.#delayMs = 100;
  }

  #reconnectSoon(failed: pg.Client): void {
    if (this.#closed || this.#client !== failed) return;
    this.#client = undefined;
    failed.removeAllListeners();
    failed.on("error", () => undefined);
    const attempt = () => {
      if (this.#closed) return;
      this.#connect().then(
        () => {
          this.log.info("the change notification connection is back");
          this.onResync();
        },
        () => {
          this.#delayMs = Math.min(this.#delayMs * 2, MAX_RECONNECT_DELAY_MS);
          setTimeout(attempt, this.#delayMs).unref();
        },
      );
    };
    setTimeout(attempt, this.#delayMs).unref();
  }
}

function changeOf(notice: ChangeNotice): SessionChange {
  if (notice.k === "d") return { kind: "deleted" };
  if (notice.k === "r") return { kind: "rewound", toSeq: notice.q ?? 0 };
  return { kind: "appended" };
}
