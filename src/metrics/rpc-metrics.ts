import { Counter, Histogram, type Registry } from "prom-client";

/** How a method streams, named as go-grpc-prometheus's grpc_type label names it. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

/**
 * The gRPC status codes as grpc-go's `codes.Code.String()` spells them (by number), which is
 * what go-grpc-prometheus puts in grpc_code: dashboards and alerts written for it match these.
 */
const GO_CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** The grpc_code value of a status code. */
export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? `Code(${code})`;
}

type MethodLabels = Record<"grpc_type" | "grpc_service" | "grpc_method", string>;

/**
 * One method's counts since the last scrape. The interceptor adds to plain numbers, which cost
 * nothing per message; a scrape moves them into prom-client's counters.
 */
export class MethodCounts {
  started = 0;
  received = 0;
  sent = 0;
  /** Calls finished, by status code. */
  readonly handled: number[] = [];

  constructor(
    readonly labels: MethodLabels,
    private readonly histogram: Histogram<string>,
  ) {}

  /** A call finished with `code` after `seconds`. */
  finished(code: number, seconds: number): void {
    this.handled[code] = (this.handled[code] ?? 0) + 1;
    this.histogram.observe(this.labels, seconds);
  }
}

/** The per-method tallies moved into a counter of the same meaning at each scrape. */
type Tally = "started" | "received" | "sent";

/**
 * The gRPC server series of go-grpc-prometheus, with its names, help texts, labels and
 * buckets: grpc_server_started_total, grpc_server_handled_total (with grpc_code),
 * grpc_server_handling_seconds, grpc_server_msg_received_total and grpc_server_msg_sent_total.
 */
export class RpcMetrics {
  readonly #methods = new Map<string, MethodCounts>();
  readonly #tallied: Counter<string>[];
  readonly #handled: Counter<string>;
  readonly #handling: Histogram<string>;

  constructor(registry: Registry) {
    const methods = this.#methods;
    const labelNames = ["grpc_type", "grpc_service", "grpc_method"];
    const tallied = (name: string, help: string, tally: Tally) =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          for (const counts of methods.values()) {
            if (counts[tally] === 0) continue;
            this.inc(counts.labels, counts[tally]);
            counts[tally] = 0;
          }
        },
      });
    this.#tallied = [
      tallied(
        "grpc_server_started_total",
        "Total number of RPCs started on the server.",
        "started",
      ),
      tallied(
        "grpc_server_msg_received_total",
        "Total number of RPC stream messages received on the server.",
        "received",
      ),
      tallied(
        "grpc_server_msg_sent_total",
        "Total number of gRPC stream messages sent by the server.",
        "sent",
      ),
    ];
    this.#handled = new Counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: [...labelNames, "grpc_code"],
      registers: [registry],
      collect() {
        for (const counts of methods.values()) {
          counts.handled.forEach((value, code) => {
            if (value > 0) this.inc({ ...counts.labels, grpc_code: goCodeName(code) }, value);
          });
          counts.handled.length = 0;
        }
      },
    });
    this.#handling = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
      labelNames,
      // Prometheus's default buckets, which go-grpc-prometheus uses.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  /** The counts of the method at `path` (`/package.Service/Method`), made on first use. */
  method(path: string, type: GrpcType): MethodCounts {
    let counts = this.#methods.get(path);
    if (!counts) {
      const slash = path.lastIndexOf("/");
      counts = new MethodCounts(
        { grpc_type: type, grpc_service: path.slice(1, slash), grpc_method: path.slice(slash + 1) },
        this.#handling,
      );
      this.#methods.set(path, counts);
    }
    return counts;
  }

  /**
   * Makes every series of a served method exist at zero before its first call, as
   * go-grpc-prometheus's Register does, so that rates and ratios see the first call.
   */
  initialize(path: string, type: GrpcType): void {
    const { labels } = this.method(path, type);
    for (const counter of this.#tallied) counter.inc(labels, 0);
    for (const grpc_code of GO_CODE_NAMES) this.#handled.inc({ ...labels, grpc_code }, 0);
    this.#handling.zero(labels);
  }
}
