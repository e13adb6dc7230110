import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The version in the package's package.json, read at run time from the nearest package.json
 * above this module: the same file from src/ (tests) as from dist/src/ (the compiled CLI), and
 * the installed package's own when installed, with nothing to keep in step at build time.
 */
export function packageVersion(): string {
  let directory = new URL(".", import.meta.url);
  while (!existsSync(new URL("package.json", directory))) {
    const parent = new URL("..", directory);
    if (parent.href === directory.href) {
      throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    }
    directory = parent;
  }
  const file = new URL("package.json", directory);
  const { version } = JSON.parse(readFileSync(file, "utf8")) as { version?: unknown };
  if (typeof version !== "string") throw new Error(`${fileURLToPath(file)} has no version`);
  return version;
}
