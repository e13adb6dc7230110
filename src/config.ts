import { parseArgs } from "node:util";

/** Every setting of the server. Each is a flag (`--name`) and an environment variable. */
export interface Config {
  listen: string;
  tlsCert: string;
  tlsKey: string;
  tlsClientCa: string;
  auth: "none" | "jwt" | "mtls";
  authJwks: string;
  authIssuer: string;
  authAudience: string;
  authTenantClaim: string;
  allowUnauthenticated: boolean;
  dataDir: string;
  storage: "jsonl" | "memory" | "postgres";
  databaseUrl: string;
  databasePoolSize: number;
  databaseTimeoutMs: number;
  flushMessages: number;
  flushIntervalMs: number;
  durability: "buffered" | "sync";
  retentionMaxMessages: number;
  retentionMaxAgeMs: number;
  sessionIdleTtlMs: number;
  retentionSweepIntervalMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  metricsListen: string;
  metricsPerTenant: boolean;
  maxOpenFiles: number;
  journalSegmentBytes: number;
  shutdownTimeoutMs: number;
  drainDelayMs: number;
  maxMessageBytes: number;
  maxRequestMessages: number;
  maxRequestBytes: number;
  maxSessionBufferBytes: number;
  maxBufferBytes: number;
  maxAppendStreams: number;
  maxReadStreams: number;
  maxStreamsPerConnection: number;
  maxConnections: number;
  handshakeTimeoutMs: number;
  maxConnectionIdleMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  keepaliveMinPingIntervalMs: number;
}

interface Setting<K extends keyof Config> {
  key: K;
  flag: string;
  description: string;
  default: Config[K];
  parse(text: string): Config[K];
  /** A switch: `--flag` alone means true (its environment variable takes true or false). */
  isSwitch?: true;
}

type AnySetting = { [K in keyof Config]: Setting<K> }[keyof Config];

/** The settings, in the order `--help` and the README show them. */
export const SETTINGS: readonly AnySetting[] = [
  {
    key: "listen",
    flag: "listen",
    description: "address to listen on, host:port; port 0 picks a free one",
    default: "127.0.0.1:50051",
    parse: (text) => text,
  },
  {
    key: "tlsCert",
    flag: "tls-cert",
    description:
      "serve TLS with this PEM certificate chain (with --tls-key); reloaded when the file changes",
    default: "",
    parse: (text) => text,
  },
  {
    key: "tlsKey",
    flag: "tls-key",
    description: "the PEM private key of --tls-cert; reloaded when the file changes",
    default: "",
    parse: (text) => text,
  },
  {
    key: "tlsClientCa",
    flag: "tls-client-ca",
    description:
      "require client certificates signed by these PEM CA certificates (mTLS); reloaded when the file changes",
    default: "",
    parse: (text) => text,
  },
  {
    key: "auth",
    flag: "auth",
    description:
      "who callers are: none (one tenant, everything allowed), jwt (a bearer token) or mtls (the client certificate)",
    default: "none",
    parse: oneOf(["none", "jwt", "mtls"] as const),
  },
  {
    key: "authJwks",
    flag: "auth-jwks",
    description: "JWKS file of the keys that sign tokens (--auth jwt); reloaded when it changes",
    default: "",
    parse: (text) => text,
  },
  {
    key: "authIssuer",
    flag: "auth-issuer",
    description: "the iss every token must carry (--auth jwt)",
    default: "",
    parse: (text) => text,
  },
  {
    key: "authAudience",
    flag: "auth-audience",
    description: "the aud every token must include (--auth jwt)",
    default: "",
    parse: (text) => text,
  },
  {
    key: "authTenantClaim",
    flag: "auth-tenant-claim",
    description: "the token claim naming the caller's tenant (--auth jwt)",
    default: "tenant",
    parse: (text) => text,
  },
  {
    key: "allowUnauthenticated",
    flag: "allow-unauthenticated",
    description:
      "with --auth none, listen on a non-loopback address anyway (a mesh sidecar authenticates callers)",
    default: false,
    parse: switchValue,
    isSwitch: true,
  },
  {
    key: "dataDir",
    flag: "data-dir",
    description: "directory of the session files (jsonl storage)",
    default: "./data",
    parse: (text) => text,
  },
  {
    key: "storage",
    flag: "storage",
    description:
      "storage backend: jsonl (one file per session), postgres (shared by many replicas) or memory (nothing persists)",
    default: "jsonl",
    parse: oneOf(["jsonl", "postgres", "memory"] as const),
  },
  {
    key: "databaseUrl",
    flag: "database-url",
    description: "PostgreSQL connection URL (libpq form) of the postgres storage",
    default: "",
    parse: (text) => text,
  },
  {
    key: "databasePoolSize",
    flag: "database-pool-size",
    description: "connections to PostgreSQL per server, besides the one that listens for changes",
    default: 10,
    parse: integer(1),
  },
  {
    key: "databaseTimeoutMs",
    flag: "database-timeout-ms",
    description: "longest wait for a PostgreSQL connection or statement before UNAVAILABLE",
    default: 5000,
    parse: integer(100),
  },
  {
    key: "flushMessages",
    flag: "flush-messages",
    description: "write a session's buffer once it holds this many messages",
    default: 20,
    parse: integer(1),
  },
  {
    key: "flushIntervalMs",
    flag: "flush-interval-ms",
    description: "write and fsync buffered messages at the latest this long after they arrive",
    default: 5000,
    parse: integer(1),
  },
  {
    key: "durability",
    flag: "durability",
    description: "buffered: ack once in memory; sync: ack every append only once fsynced",
    default: "buffered",
    parse: oneOf(["buffered", "sync"] as const),
  },
  {
    key: "retentionMaxMessages",
    flag: "retention-max-messages",
    description:
      "keep at most this many of each session's newest messages (trim the older); 0: all",
    default: 0,
    parse: integer(0),
  },
  {
    key: "retentionMaxAgeMs",
    flag: "retention-max-age-ms",
    description: "trim messages appended longer ago than this; 0: keep them",
    default: 0,
    parse: integer(0),
  },
  {
    key: "sessionIdleTtlMs",
    flag: "session-idle-ttl-ms",
    description: "delete sessions not appended to for this long; 0: never",
    default: 0,
    parse: integer(0),
  },
  {
    key: "retentionSweepIntervalMs",
    flag: "retention-sweep-interval-ms",
    description: "how often the retention rules above are applied (a background sweep)",
    default: 60000,
    parse: integer(100),
  },
  {
    key: "logLevel",
    flag: "log-level",
    description: "fatal, error, warn, info, debug, trace or silent",
    default: "info",
    parse: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
  },
  {
    key: "metricsListen",
    flag: "metrics-listen",
    description: "serve Prometheus metrics at http://host:port/metrics; empty: no metrics",
    default: "",
    parse: optionalAddress,
  },
  {
    key: "metricsPerTenant",
    flag: "metrics-per-tenant",
    description: "label the appended messages and bytes counters with the tenant",
    default: false,
    parse: switchValue,
    isSwitch: true,
  },
  {
    key: "maxOpenFiles",
    flag: "max-open-files",
    description: "idle session files kept open; any number of sessions still works",
    default: 1024,
    parse: integer(1),
  },
  {
    key: "journalSegmentBytes",
    flag: "journal-segment-bytes",
    description: "file storage: checkpoint the journal of durable appends at this size",
    default: 64 << 20,
    parse: integer(4096),
  },
  {
    key: "maxMessageBytes",
    flag: "max-message-bytes",
    description: "largest message accepted (UTF-8 bytes); larger ones are RESOURCE_EXHAUSTED",
    default: 1 << 20,
    parse: integer(1),
  },
  {
    key: "maxRequestMessages",
    flag: "max-request-messages",
    description: "most messages in one Append request",
    default: 10_000,
    parse: integer(1),
  },
  {
    key: "maxRequestBytes",
    flag: "max-request-bytes",
    description: "largest request accepted on the wire (gRPC's max receive message size)",
    default: 16 << 20,
    parse: integer(1024),
  },
  {
    key: "maxSessionBufferBytes",
    flag: "max-session-buffer-bytes",
    description: "buffered, not yet written messages per session; past it, Append waits",
    default: 16 << 20,
    parse: integer(1),
  },
  {
    key: "maxBufferBytes",
    flag: "max-buffer-bytes",
    description: "buffered, not yet written messages of all sessions; past it, Append waits",
    default: 256 << 20,
    parse: integer(1),
  },
  {
    key: "maxAppendStreams",
    flag: "max-append-streams",
    description: "concurrent Append streams; more are RESOURCE_EXHAUSTED (reads cannot take these)",
    default: 1000,
    parse: integer(1),
  },
  {
    key: "maxReadStreams",
    flag: "max-read-streams",
    description: "concurrent Load and Watch streams; more are RESOURCE_EXHAUSTED",
    default: 1000,
    parse: integer(1),
  },
  {
    key: "maxStreamsPerConnection",
    flag: "max-streams-per-connection",
    description: "concurrent calls on one connection (HTTP/2); more wait in the client",
    default: 100,
    parse: integer(1),
  },
  {
    key: "maxConnections",
    flag: "max-connections",
    description: "open client connections; more are closed as they arrive",
    default: 4096,
    parse: integer(1),
  },
  {
    key: "handshakeTimeoutMs",
    flag: "handshake-timeout-ms",
    description: "time a client has to open HTTP/2, or to close after the server closed",
    default: 10_000,
    parse: milliseconds(1),
  },
  {
    key: "maxConnectionIdleMs",
    flag: "max-connection-idle-ms",
    description: "close a connection without calls for this long (GOAWAY); 0: never",
    default: 300_000,
    parse: milliseconds(0),
  },
  {
    key: "maxConnectionAgeMs",
    flag: "max-connection-age-ms",
    description: "move clients to a new connection after this long (±10%, GOAWAY); 0: never",
    default: 1_800_000,
    parse: milliseconds(0),
  },
  {
    key: "maxConnectionAgeGraceMs",
    flag: "max-connection-age-grace-ms",
    description: "calls still running this long after a max-age GOAWAY are cut off",
    default: 60_000,
    parse: milliseconds(0),
  },
  {
    key: "keepaliveTimeMs",
    flag: "keepalive-time-ms",
    description: "ping each connection this often, to find clients that are gone; 0: never",
    default: 60_000,
    parse: milliseconds(0),
  },
  {
    key: "keepaliveTimeoutMs",
    flag: "keepalive-timeout-ms",
    description: "close a connection whose client does not answer a ping within this long",
    default: 20_000,
    parse: milliseconds(1),
  },
  {
    key: "keepaliveMinPingIntervalMs",
    flag: "keepalive-min-ping-interval-ms",
    description: "clients pinging more often, no data between, are refused (GOAWAY); 0: any",
    default: 10_000,
    parse: milliseconds(0),
  },
  {
    key: "shutdownTimeoutMs",
    flag: "shutdown-timeout-ms",
    description: "on SIGTERM/SIGINT, cancel calls still running after this long",
    default: 10000,
    parse: integer(0),
  },
  {
    key: "drainDelayMs",
    flag: "drain-delay-ms",
    description:
      "on SIGTERM/SIGINT, report NOT_SERVING and keep serving this long first, so load balancers stop sending calls",
    default: 0,
    parse: milliseconds(0),
  },
];

/**
 * Settings that were removed, with what replaced them. Naming one (flag or environment variable)
 * fails rather than being ignored: a deployment that set it must learn that its meaning changed.
 */
const RETIRED_SETTINGS: Readonly<Record<string, string>> = {
  "max-streams":
    "replaced by --max-append-streams and --max-read-streams: Append and reads (Load, Watch) " +
    "each have their own limit now, so that readers cannot starve writers",
};

/** The environment variable of a flag: `--data-dir` is SESSIONSTORE_DATA_DIR. */
export function envName(flag: string): string {
  return `SESSIONSTORE_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Settings from flags, then environment variables, then defaults. Throws ConfigError. */
export function loadConfig(args: readonly string[], env: NodeJS.ProcessEnv): Config {
  for (const [flag, replacement] of Object.entries(RETIRED_SETTINGS)) {
    const named = args.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
    if (named || env[envName(flag)] !== undefined) {
      throw new ConfigError(`--${flag} (${envName(flag)}) was ${replacement}`);
    }
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        SETTINGS.map((setting) => [
          setting.flag,
          { type: setting.isSwitch ? ("boolean" as const) : ("string" as const) },
        ]),
      ),
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${usage()}`);
  }
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const setting of SETTINGS) {
    const flagValue = values[setting.flag];
    const text =
      typeof flagValue === "string"
        ? flagValue
        : flagValue === true
          ? "true"
          : env[envName(setting.flag)];
    if (text === undefined) {
      config[setting.key] = setting.default;
      continue;
    }
    try {
      config[setting.key] = setting.parse(text);
    } catch (error) {
      throw new ConfigError(
        `--${setting.flag} (${envName(setting.flag)}): ${(error as Error).message}`,
      );
    }
  }
  checkCombinations(config as Config);
  return config as Config;
}

/** Settings that only make sense together, and the protected mode. */
function checkCombinations(config: Config): void {
  const needs = (what: string, flags: string[]) =>
    new ConfigError(
      `${what} needs ${flags.map((flag) => `--${flag} (${envName(flag)})`).join(" and ")}`,
    );
  if (config.storage === "postgres" && config.databaseUrl === "") {
    throw new ConfigError(
      `--storage postgres needs --database-url (${envName("database-url")}), e.g. postgresql://user@host:5432/db`,
    );
  }
  if ((config.tlsCert === "") !== (config.tlsKey === "")) {
    throw needs("TLS", ["tls-cert", "tls-key"]);
  }
  if (config.tlsClientCa !== "" && config.tlsCert === "") {
    throw needs("--tls-client-ca (mTLS)", ["tls-cert", "tls-key"]);
  }
  if (config.auth === "mtls" && config.tlsClientCa === "") {
    throw needs("--auth mtls", ["tls-client-ca", "tls-cert", "tls-key"]);
  }
  if (config.auth === "jwt" && config.authJwks === "") {
    throw needs("--auth jwt", ["auth-jwks"]);
  }
  if (config.auth === "jwt" && (config.authIssuer === "" || config.authAudience === "")) {
    throw new ConfigError(
      `--auth jwt needs --auth-issuer and --auth-audience: without them a token its issuer made for another service would be accepted`,
    );
  }
  if (config.auth === "none" && !config.allowUnauthenticated && !isLoopback(config.listen)) {
    throw new ConfigError(
      `refusing to listen on ${config.listen} without authentication: anyone who reaches it could read and delete every session. ` +
        "Pass --auth jwt or --auth mtls, listen on 127.0.0.1, or pass --allow-unauthenticated " +
        `(${envName("allow-unauthenticated")}=true) when something in front authenticates callers (a mesh sidecar doing mTLS)`,
    );
  }
}

/** The settings as the log shows them: a password in the database URL is masked. */
export function loggableSettings(config: Config): Config {
  if (config.databaseUrl === "") return config;
  try {
    const url = new URL(config.databaseUrl);
    if (url.password !== "") url.password = "***";
    return { ...config, databaseUrl: url.toString() };
  } catch {
    return { ...config, databaseUrl: "(not a URL)" };
  }
}

/** Whether host:port names a loopback host, reachable only from this machine. */
export function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The flags that are not settings, as `--help` lists them after the settings. */
const COMMAND_FLAGS: readonly { flag: string; lines: string[] }[] = [
  { flag: "help", lines: ["print this help and exit"] },
  { flag: "version", lines: ["print the version and exit"] },
];

/**
 * The text of `--help`: each flag, then its description and, for a setting, its environment
 * variable and default, aligned in one column just past the longest flag.
 */
export function usage(): string {
  const rows = [
    ...SETTINGS.map((setting) => ({
      flag: setting.flag,
      lines: [setting.description, `env ${envName(setting.flag)}, default ${setting.default}`],
    })),
    ...COMMAND_FLAGS,
  ];
  const column = Math.max(...rows.map((row) => `--${row.flag}`.length)) + 2;
  const options = rows.flatMap((row) =>
    row.lines.map(
      (line, index) => `  ${(index === 0 ? `--${row.flag}` : "").padEnd(column)}${line}`,
    ),
  );
  return (
    "Usage: sessionstore serve [options]\n" +
    "       sessionstore copy --from <data-dir | postgres-url> --to <data-dir | postgres-url>\n" +
    "       sessionstore migrate --database-url <postgres-url>\n" +
    "       sessionstore --version\n\n" +
    `Options:\n${options.join("\n")}\n`
  );
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      throw new Error(`expected a whole number ${range}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
}

/** A duration for a timer: Node fires timers longer than 2^31 - 1 ms (24.8 days) after 1 ms. */
function milliseconds(min: number): (text: string) => number {
  return integer(min, 2 ** 31 - 1);
}

/** host:port, or empty for none. */
function optionalAddress(text: string): string {
  if (text === "") return text;
  const port = /^.+:(\d{1,5})$/.exec(text)?.[1];
  if (port === undefined || Number(port) > 65535) {
    throw new Error(`expected host:port (or nothing), got ${JSON.stringify(text)}`);
  }
  return text;
}

function switchValue(text: string): boolean {
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0" || text === "") return false;
  throw new Error(`expected true or false, got ${JSON.stringify(text)}`);
}

function oneOf<const T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    if (!(choices as readonly string[]).includes(text)) {
      throw new Error(`expected one of ${choices.join(", ")}, got ${JSON.stringify(text)}`);
    }
    return text as T;
  };
}
