import { execFileSync } from "node:child_process";
import { appendFileSync, rmSync } from "node:fs";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach } from "vitest";
import { JsonlFileStorage } from "../../src/store/jsonl/jsonl-storage.js";
import { readEntries } from "../../src/store/jsonl/record-index.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { type RootTenantStorage, rootTenantOf } from "../helpers/root-tenant.js";
import type { StorageFixture, WriteFaults } from "./conformance.js";

export { MOTOSAN_FIXTURES };

/** Whether this process may mount a tmpfs (CI runs as root), for tests of a full disk. */
export const CAN_MOUNT = process.getuid?.() === 0;

export function makeTempDir(prefix = "jsonl-storage-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A JSONL backend, used through its tenant "" unless a test asks for another. */
export type JsonlStorage = RootTenantStorage<JsonlFileStorage>;

/** A JSONL backend over `directory` with small buffers' defaults, as the tests want it. */
export function newStorage(
  directory: string,
  overrides: Partial<ConstructorParameters<typeof JsonlFileStorage>[0]> = {},
): JsonlStorage {
  return rootTenantOf(
    new JsonlFileStorage({
      directory,
      maxOpenFiles: 64,
      flushMessages: 20,
      flushIntervalMs: 60_000,
      maxSessionBufferBytes: 16 << 20,
      maxBufferBytes: 256 << 20,
      log: pino({ level: "silent" }),
      ...overrides,
    }),
  );
}

export function sessionFile(directory: string, sessionId: string): string {
  return join(directory, `${sessionId}.jsonl`);
}

export function indexFile(directory: string, sessionId: string): string {
  return join(directory, ".sessionstore", "index", `${sessionId}.idx`);
}

/**
 * Overwrites record `seq` of a session file with `{XXXX…}` of the same length: the file's size
 * and lines stay as they were, only the record is not what was appended.
 */
export async function damageRecord(
  directory: string,
  sessionId: string,
  seq: number,
): Promise<void> {
  const index = await open(indexFile(directory, sessionId), "r");
  const [entry] = await readEntries(index, seq, 1).finally(() => index.close());
  if (!entry) throw new Error(`no index entry for seq ${seq}`);
  const file = await open(sessionFile(directory, sessionId), "r+");
  try {
    const garbage = `{${"X".repeat(entry.lineLength - 2)}}`;
    await file.write(Buffer.from(garbage, "latin1"), 0, entry.lineLength, entry.start);
  } finally {
    await file.close();
  }
}

/**
 * A tmpfs of `size` mounted at a fresh directory, and writes that fail for real: `failWrites`
 * fills it up, `restoreWrites` frees it.
 */
export async function mountSmallDisk(size = "1m"): Promise<{
  directory: string;
  faults: WriteFaults;
  unmount(): Promise<void>;
}> {
  const directory = await makeTempDir("jsonl-full-");
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", directory]);
  const filler = join(directory, "filler.bin");
  return {
    directory,
    faults: {
      failWrites: async () => {
        const chunk = Buffer.alloc(4096, 0x61);
        for (;;) {
          try {
            appendFileSync(filler, chunk);
          } catch {
            return;
          }
        }
      },
      restoreWrites: async () => rmSync(filler, { force: true }),
    },
    unmount: async () => {
      execFileSync("umount", [directory]);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The conformance fixture of the JSONL backend: reopen, damage and (as root) a full disk. */
export async function jsonlFixture(): Promise<StorageFixture> {
  const disk = CAN_MOUNT ? await mountSmallDisk() : undefined;
  const directory = disk?.directory ?? (await makeTempDir());
  return {
    storage: newStorage(directory),
    reopen: async () => newStorage(directory),
    ...(disk ? { writeFaults: disk.faults } : {}),
    damage: (sessionId, seq) => damageRecord(directory, sessionId, seq),
    damageMarksCorrupt: true,
    cleanup: async () => {
      if (disk) await disk.unmount();
      else await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The lines of a file's text, without the empty string after the final newline. */
export function linesOf(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** Line 1 of a file, parsed as motosan's serde would (JSON.parse also allows trailing spaces). */
export function headerOf(text: string): Record<string, unknown> {
  return JSON.parse(linesOf(text)[0] ?? "") as Record<string, unknown>;
}

/**
 * A fresh data directory per test, the storages a test opens (closed after it), and helpers
 * over the directory's files.
 */
export function useDataDirectory() {
  const state = { directory: "", opened: [] as JsonlStorage[] };
  beforeEach(async () => {
    state.directory = await makeTempDir();
    state.opened = [];
  });
  afterEach(async () => {
    for (const storage of state.opened.splice(0).reverse()) await storage.close().catch(() => {});
    await rm(state.directory, { recursive: true, force: true });
  });
  return {
    get directory() {
      return state.directory;
    },
    async openStorage(overrides: Parameters<typeof newStorage>[1] = {}): Promise<JsonlStorage> {
      const storage = newStorage(state.directory, overrides);
      state.opened.push(storage);
      await storage.open();
      return storage;
    },
    /** Closes `storage` and opens a new one on the same directory, as after a restart. */
    async reopen(storage: JsonlStorage, overrides: Parameters<typeof newStorage>[1] = {}) {
      state.opened.splice(state.opened.indexOf(storage), 1);
      await storage.close();
      return this.openStorage(overrides);
    },
    file: (sessionId: string) => sessionFile(state.directory, sessionId),
    readText: (sessionId: string) => readFile(sessionFile(state.directory, sessionId), "utf8"),
    /** Copies a motosan fixture in (with fresh permissions), optionally edited, as `name`. */
    async copyFixture(
      fixture: string,
      edit: (text: string) => string = (text) => text,
      name = fixture,
    ): Promise<string> {
      const text = await readFile(join(MOTOSAN_FIXTURES, `${fixture}.jsonl`), "utf8");
      await writeFile(sessionFile(state.directory, name), edit(text));
      return text;
    },
    async fixtureLines(fixture: string): Promise<string[]> {
      return linesOf(await readFile(join(MOTOSAN_FIXTURES, `${fixture}.jsonl`), "utf8"));
    },
  };
}
