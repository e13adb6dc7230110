import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  envName,
  isLoopback,
  loadConfig,
  loggableSettings,
  SETTINGS,
  usage,
} from "../src/config.js";

describe("loadConfig", () => {
  it("uses the documented defaults", () => {
    expect(loadConfig([], {})).toMatchObject({
      listen: "127.0.0.1:50051",
      dataDir: "./data",
      flushMessages: 20,
      flushIntervalMs: 5000,
      durability: "buffered",
      logLevel: "info",
    });
  });

  it("takes environment variables, and flags over them", () => {
    const env = { SESSIONSTORE_DATA_DIR: "/env", SESSIONSTORE_FLUSH_MESSAGES: "7" };
    expect(loadConfig([], env)).toMatchObject({ dataDir: "/env", flushMessages: 7 });
    expect(loadConfig(["--data-dir", "/flag", "--durability=sync"], env)).toMatchObject({
      dataDir: "/flag",
      flushMessages: 7,
      durability: "sync",
    });
  });

  it("takes --metrics-per-tenant as a bare flag, or as its variable set to true or false", () => {
    expect(loadConfig([], {}).metricsPerTenant).toBe(false);
    expect(loadConfig(["--metrics-per-tenant"], {}).metricsPerTenant).toBe(true);
    expect(loadConfig([], { SESSIONSTORE_METRICS_PER_TENANT: "true" }).metricsPerTenant).toBe(true);
    expect(loadConfig([], { SESSIONSTORE_METRICS_PER_TENANT: "0" }).metricsPerTenant).toBe(false);
  });

  it.each([
    [["--metrics-listen", "9464"], {}, "expected host:port"],
    [["--metrics-listen", "127.0.0.1:99999"], {}, "expected host:port"],
    [[], { SESSIONSTORE_METRICS_PER_TENANT: "yes" }, "expected true or false"],
  ])("rejects metrics settings %j %j", (args, env, text) => {
    expect(() => loadConfig(args, env)).toThrow(ConfigError);
    expect(() => loadConfig(args, env)).toThrow(text);
  });

  it.each([
    [["--flush-messages", "0"], "--flush-messages"],
    [["--flush-interval-ms", "soon"], "--flush-interval-ms"],
    [["--durability", "maybe"], "expected one of buffered, sync"],
    [["--no-such-flag", "1"], "no-such-flag"],
    // Node would fire a longer timer after 1 ms: an idle timeout of 25 days must not mean 1 ms.
    [["--max-connection-idle-ms", String(2 ** 31)], "from 0 to 2147483647"],
  ])("rejects %j with a message naming the problem", (args, text) => {
    expect(() => loadConfig(args, {})).toThrow(ConfigError);
    expect(() => loadConfig(args, {})).toThrow(text);
  });

  it.each([
    [["--max-streams", "10"], {}],
    [["--max-streams=10"], {}],
    [[], { SESSIONSTORE_MAX_STREAMS: "10" }],
  ])("rejects the retired --max-streams (%j, %j), naming what replaced it", (args, env) => {
    expect(() => loadConfig(args, env)).toThrow(ConfigError);
    expect(() => loadConfig(args, env)).toThrow(/--max-append-streams and --max-read-streams/);
  });

  describe("protected mode", () => {
    it("refuses to listen beyond loopback without authentication, saying what to do", () => {
      for (const listen of ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "example.org:1"]) {
        expect(() => loadConfig(["--listen", listen], {})).toThrow(
          /without authentication[\s\S]*--auth jwt or --auth mtls[\s\S]*--allow-unauthenticated/,
        );
      }
    });

    it("listens anywhere with --allow-unauthenticated (or its variable), or with authentication", () => {
      expect(
        loadConfig(["--listen", "0.0.0.0:50051", "--allow-unauthenticated"], {}),
      ).toMatchObject({ allowUnauthenticated: true });
      const env = { SESSIONSTORE_ALLOW_UNAUTHENTICATED: "true" };
      expect(loadConfig(["--listen", "0.0.0.0:1"], env).allowUnauthenticated).toBe(true);
      const jwt = [
        "--auth",
        "jwt",
        "--auth-jwks",
        "k.json",
        "--auth-issuer",
        "i",
        "--auth-audience",
        "a",
      ];
      expect(loadConfig(["--listen", "0.0.0.0:1", ...jwt], {}).auth).toBe("jwt");
    });

    it("knows loopback addresses", () => {
      for (const address of ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1"]) {
        expect(isLoopback(address), address).toBe(true);
      }
      for (const address of ["0.0.0.0:1", "[::]:1", "128.0.0.1:1", "localhost.evil.example:1"]) {
        expect(isLoopback(address), address).toBe(false);
      }
    });
  });

  it.each([
    [["--tls-cert", "c.pem"], "--tls-key"],
    [["--tls-client-ca", "ca.pem"], "--tls-cert"],
    [["--auth", "mtls"], "--tls-client-ca"],
    [["--auth", "jwt"], "--auth-jwks"],
    [["--auth", "jwt", "--auth-jwks", "k.json", "--auth-issuer", "i"], "--auth-audience"],
    [["--allow-unauthenticated=maybe"], "allow-unauthenticated"],
  ])("refuses %j, naming what is missing", (args, text) => {
    expect(() => loadConfig(args, {})).toThrow(ConfigError);
    expect(() => loadConfig(args, {})).toThrow(text);
  });

  it("never logs the database password", () => {
    const config = loadConfig(
      ["--storage", "postgres", "--database-url", "postgresql://app:s3cret@db:5432/sessions"],
      {},
    );
    expect(JSON.stringify(loggableSettings(config))).not.toContain("s3cret");
    expect(loggableSettings(config).databaseUrl).toBe("postgresql://app:***@db:5432/sessions");
  });

  it("is documented in the README, every flag with its variable and default", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const rows = readme
      .split("\n")
      .filter((line) => line.startsWith("| `--"))
      .map((line) => line.split("|").map((cell) => cell.trim()));
    for (const setting of SETTINGS) {
      const row = rows.find((cells) => cells[1] === `\`--${setting.flag}\``);
      expect(row, `README row for --${setting.flag}`).toBeDefined();
      const shownDefault = setting.default === "" ? "(none)" : `\`${setting.default}\``;
      expect(row?.slice(2, 4)).toEqual([`\`${envName(setting.flag)}\``, shownDefault]);
    }
  });
});

describe("usage", () => {
  it("lists every flag with its variable and default, the descriptions in one column past the longest flag", () => {
    const [, options = ""] = usage().split("\nOptions:\n");
    const lines = options.trimEnd().split("\n");
    const flags = lines.flatMap((line) => /^ {2}--(\S+)/.exec(line)?.[1] ?? []);
    expect(flags).toEqual([...SETTINGS.map((setting) => setting.flag), "help", "version"]);
    for (const setting of SETTINGS) {
      expect(options).toContain(`env ${envName(setting.flag)}, default ${setting.default}`);
    }
    const longest = Math.max(...flags.map((flag) => `  --${flag}`.length));
    const columns = lines.map((line) => /^( {2}--\S+)? +/.exec(line)?.[0].length);
    expect(new Set(columns)).toEqual(new Set([longest + 2]));
  });
});
