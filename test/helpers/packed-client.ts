import { execFile } from "node:child_process";
import { mkdir, readFile, rename, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { inject } from "vitest";
import { REPOSITORY } from "./repository.js";

const execFileAsync = promisify(execFile);
const CLIENT_PACKAGE = join(REPOSITORY, "clients/ts");

/** The tarball of @sessionstore/client that `npm pack` wrote, and what it holds. */
export interface PackedClient {
  tarball: string;
  /** Paths of the files in the tarball, relative to the package. */
  files: string[];
}

/** What the test file that packed tells the others. */
type PackOutcome = { packed: PackedClient } | { failed: string };

let packing: Promise<PackedClient> | undefined;

/**
 * @sessionstore/client packed by `npm pack` (which builds it first), once per test run: the first
 * test file to ask packs it, the others wait for its tarball. Two packs at once would race, each
 * build deleting clients/ts/dist while the other writes it.
 */
export function packedClient(): Promise<PackedClient> {
  packing ??= packOnce(join(inject("runDirectory"), "packed-client"));
  return packing;
}

async function packOnce(directory: string): Promise<PackedClient> {
  const outcomeFile = join(directory, "outcome.json");
  try {
    await mkdir(directory); // exactly one test file's worker creates it, and packs
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return packedOf(JSON.parse(await waitForFile(outcomeFile)) as PackOutcome);
  }
  let outcome: PackOutcome;
  try {
    const { stdout } = await execFileAsync(
      "npm",
      ["pack", "--json", "--pack-destination", directory],
      { cwd: CLIENT_PACKAGE },
    );
    // The build's output comes before npm's JSON.
    const [info] = JSON.parse(stdout.slice(stdout.indexOf("["))) as {
      filename: string;
      files: { path: string }[];
    }[];
    if (!info) throw new Error(`npm pack reported nothing: ${stdout}`);
    const files = info.files.map((file) => file.path);
    outcome = { packed: { tarball: join(directory, info.filename), files } };
  } catch (error) {
    outcome = { failed: String(error) };
  }
  // Renamed into place, so that a waiting worker reads all of it or nothing.
  await writeFile(`${outcomeFile}.partial`, JSON.stringify(outcome));
  await rename(`${outcomeFile}.partial`, outcomeFile);
  return packedOf(outcome);
}

function packedOf(outcome: PackOutcome): PackedClient {
  if ("failed" in outcome)
    throw new Error(`packing @sessionstore/client failed: ${outcome.failed}`);
  return outcome.packed;
}

/**
 * Runs `work`, a program that builds clients/ts/dist or imports it (an npm script that builds the
 * client, then runs something with it), once this run's pack is done and while no other test
 * file's such work runs: a build deletes dist before writing it again, so a program started
 * meanwhile in another worker would find no client. The lock is a directory of the run's, taken
 * by whichever worker creates it.
 */
export async function withBuiltClient<T>(work: () => Promise<T>): Promise<T> {
  await packedClient();
  const lock = join(inject("runDirectory"), "client-dist.lock");
  for (const deadline = Date.now() + 300_000; ; ) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (Date.now() > deadline) throw new Error(`${lock} was never released`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(lock);
  }
}

/** The text of `path` once it exists; gives up after as long as a pack can take. */
async function waitForFile(path: string): Promise<string> {
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; ) {
    try {
      return await readFile(path, "utf8");
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${path} did not appear: the test file packing the client did not finish`);
}

/**
 * Makes `directory` a new ESM project with the packed client installed as a user installs it,
 * with the repository's version of its peer dependency @grpc/grpc-js. Offline when npm's cache
 * holds what it needs, as after `npm ci`.
 */
export async function installPackedClient(directory: string): Promise<PackedClient> {
  const packed = await packedClient();
  await mkdir(directory, { recursive: true });
  await writeFile(
    join(directory, "package.json"),
    JSON.stringify({ name: "packed-client-user", private: true, type: "module" }),
  );
  await npmInstall(directory, [packed.tarball, await atRepositoryVersion("@grpc/grpc-js")]);
  return packed;
}

/**
 * Installs `packages` into the project at `directory` at the versions the repository has (the
 * optional peer dependencies of the client's framework adapters, e.g. @langchain/core).
 */
export async function installRepositoryVersions(
  directory: string,
  packages: string[],
): Promise<void> {
  await npmInstall(directory, await Promise.all(packages.map(atRepositoryVersion)));
}

/** `name@version`, the version installed in the repository's node_modules. */
async function atRepositoryVersion(name: string): Promise<string> {
  const manifest = join(REPOSITORY, "node_modules", name, "package.json");
  const { version } = JSON.parse(await readFile(manifest, "utf8")) as { version: string };
  return `${name}@${version}`;
}

async function npmInstall(directory: string, specs: string[]): Promise<void> {
  await execFileAsync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", ...specs], {
    cwd: directory,
  });
}

/**
 * Type-checks TypeScript `files` of `project` as a user's strict Node.js code against the
 * installed packages' declarations, with the repository's compiler; with `outDir`, also compiles
 * them there.
 */
export async function compileTypeScript(
  project: string,
  files: string[],
  options: { outDir?: string } = {},
): Promise<void> {
  await execFileAsync(
    process.execPath,
    [
      join(REPOSITORY, "node_modules/typescript/bin/tsc"),
      ...(options.outDir === undefined ? ["--noEmit"] : ["--outDir", options.outDir]),
      ...["--strict", "--module", "nodenext", "--target", "es2022"],
      ...["--typeRoots", join(REPOSITORY, "node_modules/@types"), "--types", "node"],
      ...files,
    ],
    { cwd: project },
  );
}
