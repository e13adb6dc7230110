import { spawn, spawnSync } from "node:child_process";
import { chmod, chown, cp, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStoreClient } from "../../gen/sessionstore/v1/session_store.js";
import { ConfigError, envName, loadConfig, SETTINGS } from "../../src/config.js";
import { followServerOutput } from "../helpers/child-server.js";
import { copyArguments, readDockerfile } from "../helpers/dockerfile.js";
import { healthClient } from "../helpers/health.js";
import { REPOSITORY } from "../helpers/repository.js";
import { run } from "../helpers/run-program.js";
import { skipWithReason } from "../helpers/skipped-suites.js";
import { append, loadAll, makeTempDir } from "../helpers/test-server.js";

/**
 * The Dockerfile's image, without Docker (the test machines have no engine): its final stage's
 * files laid out from this checkout's build, and its ENTRYPOINT and CMD run in its ENV and
 * WORKDIR as its USER, in a mount namespace where every file system is read-only but the data
 * directory, as Kubernetes' readOnlyRootFilesystem leaves a container. The server must start,
 * serve and shut down cleanly like that. The one change: it listens on 127.0.0.1 (tests stay on
 * loopback), and its data directory is a temp directory rather than /data.
 */

const image = readDockerfile();
const [buildStage] = image.stages;
const finalStage = image.stages.at(-1);

/** Why the server cannot be run as the image's user here, if it cannot. */
function missingPrivileges(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root, to run the server as the image's user";
  for (const tool of ["unshare", "setpriv", "mount"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} not found`;
  }
  return undefined;
}

/**
 * Runs `command` in a new mount namespace in which every mount is read-only (the kernel's own
 * file systems aside) except `writable`, as `uid`:`gid` with no other groups.
 */
function readOnlyExcept(writable: string, command: string[]): string[] {
  const script = `
    set -eu
    writable=$1 uid=$2 gid=$3
    shift 3
    mount --bind "$writable" "$writable"
    awk '$3 !~ /^(proc|sysfs|cgroup2?|devpts|devtmpfs|mqueue|securityfs|debugfs|tracefs|pstore|bpf|binfmt_misc|fusectl|configfs|hugetlbfs|autofs)$/ { print $2 }' /proc/self/mounts |
      while read -r mountpoint; do
        if [ "$mountpoint" != "$writable" ]; then mount -o remount,bind,ro "$mountpoint"; fi
      done
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"`;
  const { uid, gid } = image.user;
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    script,
    "sh",
    writable,
    String(uid),
    String(gid),
    ...command,
  ];
}

describe("the Dockerfile", () => {
  it("copies only what .dockerignore lets into the build context", async () => {
    const ignore = (await readFile(join(REPOSITORY, ".dockerignore"), "utf8"))
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"));
    expect(ignore[0], "everything is left out but what is named").toBe("*");
    const allowed = ignore.slice(1).map((line) => line.replace(/^!/, ""));
    const sources = (buildStage?.instructions ?? [])
      .filter((step) => step.instruction === "COPY")
      .flatMap((step) => copyArguments(step).sources);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(
        allowed.some((path) => source === path || source.startsWith(`${path}/`)),
        source,
      ).toBe(true);
    }
  });

  it("runs the server as a numeric non-root user, which refuses to serve 0.0.0.0 unauthenticated", () => {
    expect(image.user.uid).toBeGreaterThan(0);
    expect([...image.entrypoint, ...image.cmd]).toEqual(["node", "dist/src/cli.js", "serve"]);
    const settings = new Set(SETTINGS.map((setting) => envName(setting.flag)));
    const unknown = Object.keys(image.env).filter(
      (name) => name.startsWith("SESSIONSTORE_") && !settings.has(name),
    );
    expect(unknown, "environment variables that are no setting").toEqual([]);
    // Out of the box it listens beyond loopback, so it needs a way to authenticate callers.
    expect(() => loadConfig(image.cmd.slice(1), image.env)).toThrow(ConfigError);
    expect(() => loadConfig(image.cmd.slice(1), image.env)).toThrow(
      /refusing to listen on 0\.0\.0\.0/,
    );
    expect(loadConfig([...image.cmd.slice(1), "--allow-unauthenticated"], image.env)).toMatchObject(
      { listen: "0.0.0.0:50051", dataDir: "/data", storage: "jsonl" },
    );
  });
});

describe(
  "the image's command, as its user, every file system read-only but the data directory",
  skipWithReason(missingPrivileges()),
  () => {
    let root: string;
    let data: string;
    let workdir: string;

    beforeAll(async () => {
      // The image's file system: what the final stage copies from the build stage, which built
      // this checkout (dist/, by the tests' global setup) and pruned its development packages.
      root = await makeTempDir("sessionstore-image-");
      await chmod(root, 0o755);
      workdir = join(root, image.workdir);
      const buildWorkdir = buildStage?.instructions.findLast(
        (step) => step.instruction === "WORKDIR",
      );
      for (const step of finalStage?.instructions ?? []) {
        if (step.instruction !== "COPY") continue;
        const { from, sources, dest } = copyArguments(step);
        expect(from).toBe(buildStage?.name);
        for (const source of sources) {
          const inCheckout = relative(buildWorkdir?.text ?? "/", source);
          const target = dest.endsWith("/")
            ? join(workdir, dest, inCheckout.split("/").at(-1) ?? "")
            : join(workdir, dest);
          await mkdir(dirname(target), { recursive: true });
          if (inCheckout === "node_modules") await copyProductionPackages(target);
          else await cp(join(REPOSITORY, inCheckout), target, { recursive: true });
        }
      }
      data = await makeTempDir("sessionstore-image-data-");
      await chown(data, image.user.uid, image.user.gid);
    }, 60_000);

    afterAll(async () => {
      if (root) await rm(root, { recursive: true, force: true });
      if (data) await rm(data, { recursive: true, force: true });
    });

    it("can write its data directory only", async () => {
      const probe = (path: string) => {
        const [command, ...args] = readOnlyExcept(data, ["touch", path]);
        return run(command as string, args);
      };
      expect((await probe(join(data, "probe"))).code).toBe(0);
      for (const path of [
        join(workdir, "probe"),
        "/tmp/sessionstore-probe",
        "/dev/shm/sessionstore-probe",
      ]) {
        const result = await probe(path);
        expect(result.code, path).not.toBe(0);
        expect(result.stderr).toMatch(/Read-only file system/);
      }
      await rm(join(data, "probe"));
    });

    it("serves, and shuts down with everything written", async () => {
      const env = {
        ...image.env,
        // The volume, mounted here rather than at the image's /data.
        SESSIONSTORE_DATA_DIR: data,
        PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
        // What a container gets for a user without an account.
        HOME: "/",
      };
      const [command, ...args] = readOnlyExcept(data, [
        ...image.entrypoint,
        ...image.cmd,
        "--listen",
        "127.0.0.1:0",
      ]);
      const child = spawn(command as string, args, {
        cwd: workdir,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const output = followServerOutput(child);
      try {
        const address = (await output.listening).address as string;
        const health = healthClient(address);
        expect(await health.check()).toEqual({ status: "SERVING" });
        health.close();
        const client = new SessionStoreClient(address, credentials.createInsecure());
        const message = '{"role":"user","content":"Hello from a read-only image"}';
        await append(client, [{ sessionId: "chat-1", messages: [message] }]);
        expect((await loadAll(client, "chat-1")).messages).toEqual([message]);
        client.close();
      } finally {
        child.kill("SIGTERM");
      }
      expect(await output.exited).toBe(0);
      const file = await stat(join(data, "chat-1.jsonl"));
      expect(file.uid).toBe(image.user.uid);
      expect(await readdir(data)).toContain("chat-1.jsonl");
      expect(await readFile(join(data, "chat-1.jsonl"), "utf8")).toContain("read-only image");
    });
  },
);

/**
 * node_modules as `npm prune --omit=dev` leaves it: the packages `npm ls --omit=dev` lists, each
 * with what it holds (nested packages of a listed one are listed too).
 */
async function copyProductionPackages(target: string): Promise<void> {
  const listed = spawnSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: REPOSITORY,
    encoding: "utf8",
  });
  expect(listed.status, listed.stderr).toBe(0);
  const modules = join(REPOSITORY, "node_modules");
  const packages = listed.stdout
    .split("\n")
    .filter((path) => path.startsWith(`${modules}/`))
    .sort();
  await mkdir(target, { recursive: true });
  let copied: string | undefined;
  for (const path of packages) {
    if (copied !== undefined && path.startsWith(`${copied}/`)) continue;
    await cp(path, join(target, relative(modules, path)), { recursive: true });
    copied = path;
  }
}
