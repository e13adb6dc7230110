import type { Logger } from "pino";
import { SessionStoreError } from "../errors.js";
import {
  listByIdQuery,
  type SessionMeta,
  type SessionStorage,
  type StorageBackend,
} from "../store/storage.js";

/** The server's retention policy; 0 turns a rule off. */
export interface RetentionPolicy {
  /** Keep at most this many messages of a session (the newest). */
  retentionMaxMessages: number;
  /** Keep messages appended at most this long ago. */
  retentionMaxAgeMs: number;
  /** Delete sessions not appended to for this long. */
  sessionIdleTtlMs: number;
  /** How often the sweeper applies the policy. */
  retentionSweepIntervalMs: number;
}

/** What a sweep did, for metrics and logs. */
export interface SweepReport {
  sessions: number;
  deleted: number;
  trimmed: number;
  failures: number;
  seconds: number;
}

/** Told of every finished sweep (metrics). */
export interface RetentionEvents {
  swept(report: SweepReport): void;
}

/** Sessions are walked in pages of this many, so that a sweep never holds a whole listing. */
const SWEEP_PAGE = 500;

/** Whether the policy asks for any sweeping at all. */
export function retentionEnabled(policy: RetentionPolicy): boolean {
  return (
    policy.retentionMaxMessages > 0 || policy.retentionMaxAgeMs > 0 || policy.sessionIdleTtlMs > 0
  );
}

/**
 * Applies the retention policy in the background: every interval it walks every tenant's
 * sessions, deletes those idle past the TTL (a guarded delete: a session appended to meanwhile
 * stays) and trims the messages past the count or older than the age. A session that fails is
 * logged and counted, and the sweep goes on. With many replicas on one database each sweeps:
 * every step is idempotent, so they only repeat each other's work.
 */
export class RetentionSweeper {
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<SweepReport> | undefined;
  #stopped = false;

  constructor(
    private readonly backend: StorageBackend,
    private readonly policy: RetentionPolicy,
    private readonly log: Logger,
    private readonly events?: RetentionEvents,
  ) {}

  /** Sweeps every interval from now on (the timer does not keep the process alive). */
  start(): void {
    if (!retentionEnabled(this.policy)) return;
    this.#schedule();
  }

  /** Stops sweeping: a sweep under way ends after the session it is at. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#sweeping?.catch(() => undefined);
  }

  /** One sweep over every session now (the timer calls it; tests too). */
  sweep(): Promise<SweepReport> {
    this.#sweeping ??= this.#sweepAll().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.sweep()
        .catch((error: unknown) => this.log.warn({ err: error }, "retention sweep failed"))
        .finally(() => this.#schedule());
    }, this.policy.retentionSweepIntervalMs);
    this.#timer.unref();
  }

  async #sweepAll(): Promise<SweepReport> {
    const started = performance.now();
    const report: SweepReport = { sessions: 0, deleted: 0, trimmed: 0, failures: 0, seconds: 0 };
    for (const tenant of await this.backend.tenants()) {
      if (this.#stopped) break;
      await this.#sweepTenant(tenant, this.backend.tenant(tenant), report);
    }
    report.seconds = (performance.now() - started) / 1000;
    this.events?.swept(report);
    if (report.deleted > 0 || report.trimmed > 0 || report.failures > 0) {
      this.log.info(report, "retention sweep");
    }
    return report;
  }

  async #sweepTenant(tenant: string, storage: SessionStorage, report: SweepReport): Promise<void> {
    let after = "";
    for (;;) {
      const page = await storage.list(listByIdQuery("", after, SWEEP_PAGE));
      for (const meta of page) {
        if (this.#stopped) return;
        report.sessions++;
        try {
          await this.#apply(storage, meta, report);
        } catch (error) {
          report.failures++;
          const reason = error instanceof SessionStoreError ? error.message : String(error);
          this.log.warn(
            { tenant, sessionId: meta.sessionId, reason },
            "retention: session skipped",
          );
        }
      }
      const last = page.at(-1);
      if (!last || page.length < SWEEP_PAGE) return;
      after = last.sessionId;
    }
  }

  async #apply(storage: SessionStorage, meta: SessionMeta, report: SweepReport): Promise<void> {
    const now = Date.now();
    const { retentionMaxMessages, retentionMaxAgeMs, sessionIdleTtlMs } = this.policy;
    if (sessionIdleTtlMs > 0 && meta.updatedAtMs < now - sessionIdleTtlMs) {
      const updatedBeforeMs = now - sessionIdleTtlMs;
      if (await storage.delete(meta.sessionId, { updatedBeforeMs })) {
        report.deleted++;
        return;
      }
    }
    let keepFrom = meta.firstSeq;
    if (retentionMaxMessages > 0) {
      keepFrom = Math.max(keepFrom, meta.messageCount - retentionMaxMessages);
    }
    if (retentionMaxAgeMs > 0) {
      keepFrom = Math.max(
        keepFrom,
        await storage.firstSeqSince(meta.sessionId, now - retentionMaxAgeMs),
      );
    }
    if (keepFrom > meta.firstSeq) {
      report.trimmed += (await storage.trim(meta.sessionId, keepFrom)).trimmed;
    }
  }
}
