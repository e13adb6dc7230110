import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ConfigError, envName, loadConfig, SETTINGS, usage } from "../src/config.js";

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
