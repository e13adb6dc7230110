import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The path of a file of the package, `relativePath` from its root, found by walking up from this
 * module: the root is one level further up when running the compiled dist/ than the sources.
 */
export function packageFile(relativePath: string): string {
  for (let directory = dirname(fileURLToPath(import.meta.url)); ; directory = dirname(directory)) {
    const candidate = join(directory, relativePath);
    if (existsSync(candidate)) return candidate;
    if (dirname(directory) === directory)
      throw new Error(`${relativePath} not found above this module`);
  }
}
