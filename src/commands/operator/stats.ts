import { EXIT, UsageError } from "./connection.js";
import { renderTable } from "./output.js";
import type { Context } from "./sessions.js";

/** The server's figures `stats` shows from its metrics endpoint, summed over their labels. */
const FROM_METRICS = {
  bufferedBytes: "sessionstore_buffered_bytes",
  watchers: "sessionstore_active_watchers",
  openSessions: "sessionstore_open_sessions",
  messagesAppended: "sessionstore_messages_appended_total",
  bytesAppended: "sessionstore_appended_bytes_total",
  storageErrors: "sessionstore_storage_errors_total",
} as const;

type MetricFigures = { [K in keyof typeof FROM_METRICS]: number };

/**
 * Sums of the samples of each metric in Prometheus's text format (`name{labels} value`), which
 * is what /metrics serves: the few figures `stats` needs, not a general parser.
 */
export function sumSamples(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value))
      sums.set(match[1] as string, (sums.get(match[1] as string) ?? 0) + value);
  }
  return sums;
}

function metricsUrl(address: string): string {
  const url = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return new URL(url).pathname === "/" ? new URL("/metrics", url).toString() : url;
}

async function readMetrics(address: string): Promise<MetricFigures> {
  const url = metricsUrl(address);
  const response = await fetch(url).catch((error: unknown) => {
    throw new Error(
      `cannot read the metrics at ${url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`,
    );
  });
  if (!response.ok) throw new Error(`the metrics at ${url} answered HTTP ${response.status}`);
  const sums = sumSamples(await response.text());
  return Object.fromEntries(
    Object.entries(FROM_METRICS).map(([key, name]) => [key, sums.get(name) ?? 0]),
  ) as MetricFigures;
}

/**
 * `stats`: sessions, messages and durable messages counted from the listing (of the caller's
 * tenant), and with `--metrics`, the server's figures since it started: buffered bytes,
 * watchers, sessions held open, messages and bytes appended, storage errors.
 */
export async function stats(
  context: Context,
  options: { metrics?: string; prefix?: string },
): Promise<number> {
  const figures = { sessions: 0, messages: 0, durable: 0, buffered: 0 };
  for await (const meta of context.connection().list({ prefix: options.prefix })) {
    figures.sessions++;
    figures.messages += meta.messageCount;
    figures.durable += meta.durableCount;
  }
  figures.buffered = figures.messages - figures.durable;
  if (options.metrics === "")
    throw new UsageError("--metrics needs the server's --metrics-listen host:port");
  const server = options.metrics === undefined ? undefined : await readMetrics(options.metrics);
  const { output } = context;
  if (output.json) {
    output.printJson({ ...figures, ...(server ? { server } : {}) });
    return EXIT.ok;
  }
  const rows: string[][] = [
    ["sessions", String(figures.sessions)],
    ["messages", String(figures.messages)],
    ["durable messages", String(figures.durable)],
    ["buffered messages", String(figures.buffered)],
  ];
  if (server) {
    rows.push(
      ["buffered bytes", String(server.bufferedBytes)],
      ["watchers", String(server.watchers)],
      ["open sessions", String(server.openSessions)],
      ["messages appended (since start)", String(server.messagesAppended)],
      ["bytes appended (since start)", String(server.bytesAppended)],
      ["storage errors (since start)", String(server.storageErrors)],
    );
  }
  output.out(renderTable(output, ["FIGURE", "VALUE"], rows));
  return EXIT.ok;
}
