import { status } from "@grpc/grpc-js";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Code } from "../errors.js";
import type { RetentionEvents, SweepReport } from "../sessions/retention.js";
import type { SessionEvents } from "../sessions/session-events.js";
import type { StorageEvents, StorageLevels } from "../store/storage-events.js";

/** Where the gauges read their values at each scrape. */
export interface ServiceLevels {
  storage(): StorageLevels;
  watchers(): number;
}

/** Appended messages and bytes since the last scrape, of one tenant or of all. */
interface Appended {
  messages: number;
  bytes: number;
}

/**
 * Writes take from tens of microseconds (a page-cache write) to seconds (a disk or a database
 * in trouble); fsyncs and synchronous commits from a fraction of a millisecond up.
 */
const STORAGE_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];

/**
 * The store's own series, `sessionstore_*`, fed by the session layer and the storage backend
 * through their observer interfaces. Label values are bounded: the tenant (only when asked
 * for) and a status code name, never a session id. Appends are tallied in plain numbers and
 * moved into the counters at each scrape, so the Append path pays an addition per request.
 */
export class ServiceMetrics implements StorageEvents, SessionEvents, RetentionEvents {
  readonly #appended = new Map<string, Appended>();
  readonly #perTenant: boolean;
  readonly #writeSeconds: Histogram;
  readonly #syncSeconds: Histogram;
  readonly #storageErrors: Counter<"code">;
  readonly #sweeps: Counter;
  readonly #sweepSeconds: Histogram;
  readonly #retentionDeleted: Counter;
  readonly #retentionTrimmed: Counter;
  readonly #retentionFailures: Counter;
  #levels: ServiceLevels | undefined;

  constructor(registry: Registry, options: { perTenant: boolean }) {
    this.#perTenant = options.perTenant;
    const registers = [registry];
    const appended = this.#appended;
    const labelNames = options.perTenant ? ["tenant"] : [];
    const appendedCounter = (name: string, help: string, take: keyof Appended) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const [tenant, tally] of appended) {
            if (tally[take] === 0) continue;
            if (options.perTenant) this.inc({ tenant }, tally[take]);
            else this.inc(tally[take]);
            tally[take] = 0;
          }
        },
      });
    appendedCounter(
      "sessionstore_messages_appended_total",
      "Messages of acknowledged Append requests.",
      "messages",
    );
    appendedCounter(
      "sessionstore_appended_bytes_total",
      "Size of the messages of acknowledged Append requests (JSON text, a byte per ASCII character).",
      "bytes",
    );
    const levels = () => this.#levels;
    new Gauge({
      name: "sessionstore_buffered_bytes",
      help: "Acknowledged messages not yet written to files or committed to PostgreSQL.",
      registers,
      collect() {
        this.set(levels()?.storage().bufferedBytes ?? 0);
      },
    });
    new Gauge({
      name: "sessionstore_open_sessions",
      help: "Sessions whose state the storage keeps in memory (always 0 on PostgreSQL).",
      registers,
      collect() {
        this.set(levels()?.storage().openSessions ?? 0);
      },
    });
    new Gauge({
      name: "sessionstore_active_watchers",
      help: "Watch calls in progress.",
      registers,
      collect() {
        this.set(levels()?.watchers() ?? 0);
      },
    });
    this.#writeSeconds = new Histogram({
      name: "sessionstore_storage_write_seconds",
      help: "Writes to storage: buffered lines appended to a session file, or a PostgreSQL append transaction.",
      buckets: STORAGE_BUCKETS,
      registers,
    });
    this.#syncSeconds = new Histogram({
      name: "sessionstore_storage_sync_seconds",
      help: "Making writes durable: an fsync of a session file, or a PostgreSQL synchronous commit.",
      buckets: STORAGE_BUCKETS,
      registers,
    });
    this.#storageErrors = new Counter({
      name: "sessionstore_storage_errors_total",
      help: "Storage operations that failed, by the status code of the failure.",
      labelNames: ["code"],
      registers,
    });
    this.#sweeps = new Counter({
      name: "sessionstore_retention_sweeps_total",
      help: "Retention sweeps finished (--retention-max-messages, --retention-max-age-ms, --session-idle-ttl-ms).",
      registers,
    });
    this.#sweepSeconds = new Histogram({
      name: "sessionstore_retention_sweep_seconds",
      help: "How long a retention sweep over every session took.",
      buckets: [0.001, 0.01, 0.1, 1, 10, 60, 600],
      registers,
    });
    this.#retentionDeleted = new Counter({
      name: "sessionstore_retention_sessions_deleted_total",
      help: "Sessions the retention sweep deleted as idle (--session-idle-ttl-ms).",
      registers,
    });
    this.#retentionTrimmed = new Counter({
      name: "sessionstore_retention_messages_trimmed_total",
      help: "Messages the retention sweep trimmed (by count or by age).",
      registers,
    });
    this.#retentionFailures = new Counter({
      name: "sessionstore_retention_failures_total",
      help: "Sessions a retention sweep could not apply the policy to (logged; tried again next sweep).",
      registers,
    });
  }

  /** Where the gauges read from, once the storage and the sessions exist. */
  observe(levels: ServiceLevels): void {
    this.#levels = levels;
  }

  appended(tenant: string, messages: number, bytes: number): void {
    const key = this.#perTenant ? tenant : "";
    let tally = this.#appended.get(key);
    if (!tally) {
      tally = { messages: 0, bytes: 0 };
      this.#appended.set(key, tally);
    }
    tally.messages += messages;
    tally.bytes += bytes;
  }

  wrote(seconds: number): void {
    this.#writeSeconds.observe(seconds);
  }

  synced(seconds: number): void {
    this.#syncSeconds.observe(seconds);
  }

  failed(code: Code): void {
    this.#storageErrors.inc({ code: status[code] });
  }

  swept(report: SweepReport): void {
    this.#sweeps.inc();
    this.#sweepSeconds.observe(report.seconds);
    this.#retentionDeleted.inc(report.deleted);
    this.#retentionTrimmed.inc(report.trimmed);
    this.#retentionFailures.inc(report.failures);
  }
}
