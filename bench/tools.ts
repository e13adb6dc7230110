import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/** The path of an executable on PATH, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const directory of (process.env.PATH ?? "").split(":")) {
    if (directory === "") continue;
    const path = join(directory, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
