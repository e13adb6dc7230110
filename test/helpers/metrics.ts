/** One sample of a scrape: a series (its name, with `_bucket`, `_sum`, `_count` for histograms) and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One scrape of a metrics endpoint: the text as served, its families' types and its samples. */
export interface Scrape {
  text: string;
  /** `# TYPE` of each family: counter, gauge, histogram... */
  types: Map<string, string>;
  samples: Sample[];
}

/** GETs `http://<address>/metrics`, as Prometheus does, and parses the text format. */
export async function scrape(address: string): Promise<Scrape> {
  const response = await fetch(`http://${address}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parsePrometheusText(await response.text());
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/**
 * Prometheus's text exposition format (version 0.0.4), strictly: every line is a comment, a
 * sample or empty, or the parse fails naming it. (parse-prometheus-text-format, the npm parser,
 * keeps only one label set of a labelled histogram, which the gRPC series are.)
 */
export function parsePrometheusText(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || (line.startsWith("#") && !line.startsWith("# TYPE "))) continue;
    if (line.startsWith("# TYPE ")) {
      const [name = "", type = ""] = line.slice("# TYPE ".length).split(" ");
      types.set(name, type);
      continue;
    }
    const match = SAMPLE.exec(line);
    const value = match ? parseValue(match[3] as string) : undefined;
    if (!match || value === undefined) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const pairs = match[2] ?? "";
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < pairs.length) {
      const label = LABEL.exec(pairs);
      if (!label) throw new Error(`bad labels in: ${line}`);
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === "n" ? "\n" : c,
      );
    }
    samples.push({ name: match[1] as string, labels, value });
  }
  return { text, types, samples };
}

/** A sample's value as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case). */
function parseValue(text: string): number | undefined {
  const special = { nan: Number.NaN, "+inf": Infinity, inf: Infinity, "-inf": -Infinity }[
    text.toLowerCase()
  ];
  if (special !== undefined) return special;
  const value = Number(text);
  return text.trim() === "" || Number.isNaN(value) ? undefined : value;
}

/** The samples of series `name` whose labels include `labels`. */
export function samplesOf(
  scraped: Scrape,
  name: string,
  labels: Record<string, string> = {},
): Sample[] {
  return scraped.samples.filter(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
  );
}

/** The sum of series `name`'s values whose labels include `labels` (0 when there is none). */
export function sumOf(scraped: Scrape, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(scraped, name, labels).reduce((sum, sample) => sum + sample.value, 0);
}
