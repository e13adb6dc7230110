import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { packageVersion } from "../../src/version.js";
import { runCli } from "../helpers/child-server.js";

const PACKAGE = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));

describe("the sessionstore command", () => {
  it.each(["--version", "serve --version"])(
    "`sessionstore %s` prints the package's version",
    async (command) => {
      const run = await runCli(command.split(" "));
      expect(run).toEqual({ code: 0, stdout: `${PACKAGE.version}\n`, stderr: "" });
    },
  );

  it("finds the version from the sources too (the CLI above runs from dist/)", () => {
    expect(packageVersion()).toBe(PACKAGE.version);
  });
});
