import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const RELATIVE_PATH = "sessionstore/v1/session_store.proto";

/**
 * The proto/ directory of the package, found by walking up from this module: it is one level
 * further up when running the compiled dist/ than when running the sources.
 */
export function protoDirectory(): string {
  for (let directory = dirname(fileURLToPath(import.meta.url)); ; directory = dirname(directory)) {
    const candidate = join(directory, "proto");
    if (existsSync(join(candidate, RELATIVE_PATH))) return candidate;
    if (dirname(directory) === directory)
      throw new Error(`proto/${RELATIVE_PATH} not found above this module`);
  }
}

export function sessionStoreProtoPath(): string {
  return join(protoDirectory(), RELATIVE_PATH);
}
