import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPOSITORY } from "./repository.js";

/** One instruction of a Dockerfile: `COPY a b` is { instruction: "COPY", text: "a b" }. */
export interface Instruction {
  instruction: string;
  text: string;
}

/** A stage of a Dockerfile (`FROM base AS name` and the instructions up to the next FROM). */
export interface Stage {
  name: string | undefined;
  instructions: Instruction[];
}

/** What a container of the image starts with: the final stage's settings. */
export interface ImageConfig {
  stages: Stage[];
  /** The final stage's WORKDIR (the last one). */
  workdir: string;
  /** Its USER, as uid and gid (numeric, as the Dockerfile must give them). */
  user: { uid: number; gid: number };
  /** Its ENV, in order. */
  env: Record<string, string>;
  /** ENTRYPOINT and CMD, in the exec form (JSON arrays). */
  entrypoint: string[];
  cmd: string[];
}

/** The repository's Dockerfile, read as a container started from its image would see it. */
export function readDockerfile(): ImageConfig {
  return parseDockerfile(readFileSync(join(REPOSITORY, "Dockerfile"), "utf8"));
}

/**
 * Parses the subset of the Dockerfile syntax our Dockerfile uses; anything else (ENV in its old
 * `ENV key value` form, quoting, a shell-form ENTRYPOINT or a non-numeric USER) throws, so that
 * the tests never read it differently from Docker.
 */
export function parseDockerfile(text: string): ImageConfig {
  const stages: Stage[] = [];
  const logicalLines = text
    .replaceAll(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  for (const line of logicalLines) {
    const [, instruction = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = instruction.toUpperCase();
    if (upper === "FROM") {
      stages.push({ name: /\sAS\s+(\S+)$/i.exec(rest)?.[1], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${instruction} before FROM`);
    stage.instructions.push({ instruction: upper, text: rest });
  }
  const final = stages.at(-1);
  if (!final) throw new Error("Dockerfile: no FROM");
  const last = (name: string) => final.instructions.findLast((step) => step.instruction === name);
  const env: Record<string, string> = {};
  for (const step of final.instructions.filter((step) => step.instruction === "ENV")) {
    for (const pair of step.text.split(/\s+/)) {
      const [, key, value] = /^([A-Za-z_][A-Za-z0-9_]*)=([^"'\s]*)$/.exec(pair) ?? [];
      if (key === undefined || value === undefined) throw new Error(`Dockerfile: ENV ${pair}`);
      env[key] = value;
    }
  }
  const user = /^(\d+):(\d+)$/.exec(last("USER")?.text ?? "");
  if (!user) throw new Error("Dockerfile: the final stage needs USER uid:gid, numeric");
  return {
    stages,
    workdir: last("WORKDIR")?.text ?? "/",
    user: { uid: Number(user[1]), gid: Number(user[2]) },
    env,
    entrypoint: execForm(last("ENTRYPOINT")),
    cmd: execForm(last("CMD")),
  };
}

function execForm(step: Instruction | undefined): string[] {
  if (!step) return [];
  const value: unknown = JSON.parse(step.text);
  if (!Array.isArray(value) || !value.every((part) => typeof part === "string")) {
    throw new Error(`Dockerfile: ${step.instruction} must be in the exec form (a JSON array)`);
  }
  return value;
}

/** The sources and destination of a COPY: `COPY --from=build a b dest/`. */
export function copyArguments(step: Instruction): {
  from?: string;
  sources: string[];
  dest: string;
} {
  const words = step.text.split(/\s+/);
  const from = words.find((word) => word.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((word) => !word.startsWith("--"));
  const dest = paths.pop();
  if (dest === undefined || paths.length === 0) throw new Error(`Dockerfile: COPY ${step.text}`);
  return { ...(from === undefined ? {} : { from }), sources: paths, dest };
}
