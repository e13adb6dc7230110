import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The repository's root directory (ends with a slash): the nearest directory above this module
 * with the project's package.json. Found by walking up, so that it is right both from the
 * sources and from a compiled copy (the benchmarks run these helpers from dist/).
 */
export const REPOSITORY = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let directory = from; ; directory = dirname(directory)) {
    if (existsSync(join(directory, "package.json")) && existsSync(join(directory, "proto"))) {
      return `${directory}/`;
    }
    if (dirname(directory) === directory) throw new Error(`no repository above ${from}`);
  }
}
