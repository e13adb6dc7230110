import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import { MOTOSAN_FIXTURES } from "../helpers/fixtures.js";
import { append, appendStream, loadAll, makeTempDir } from "../helpers/test-server.js";
import {
  expectStatus,
  flush,
  list,
  loadMeta,
  messages,
  pollUntil,
  serversClosedAfterEach,
  sessionFilePath,
} from "./support.js";

/**
 * What issue 10 found by trying the service as a hostile user and as an operator: the server
 * never destroys, misreports or serves corrupt what it stored. Through the generated client,
 * with files changed beside the running server (the file backend).
 */
describe("data safety (file backend)", () => {
  const start = serversClosedAfterEach({ flushMessages: 10_000, flushIntervalMs: 60_000 });

  it("serves a motosan file that appears while it runs, and continues it with sync and buffered appends", async () => {
    const { client, dataDir } = await start();
    const motosan = await readFile(join(MOTOSAN_FIXTURES, "agent-7f3a.jsonl"), "utf8");
    const lines = motosan.trimEnd().split("\n");
    await writeFile(sessionFilePath(dataDir, "dropped"), motosan);
    await writeFile(sessionFilePath(dataDir, "dropped-2"), motosan);

    expect((await loadAll(client, "dropped")).messages).toEqual(lines.slice(1));
    expect(await loadMeta(client, "dropped")).toMatchObject({ messageCount: 5 });
    const [synced] = await append(client, [
      { sessionId: "dropped", messages: messages("s", 1), sync: true },
    ]);
    expect(synced).toMatchObject({ firstSeq: 5, nextSeq: 6, durableCount: 6 });
    // The first call naming the second one is a buffered append: it continues the file too.
    const [buffered] = await append(client, [
      { sessionId: "dropped-2", messages: messages("b", 1) },
    ]);
    expect(buffered).toMatchObject({ firstSeq: 5, nextSeq: 6 });
    await flush(client, "");
    for (const [id, tag] of [
      ["dropped", "s"],
      ["dropped-2", "b"],
    ] as const) {
      expect(await readFile(sessionFilePath(dataDir, id), "utf8")).toBe(
        `${motosan}${messages(tag, 1)[0]}\n`,
      );
    }
    expect(
      await pollUntil(
        async () =>
          (await list(client, {})).sessions.map((meta) => meta.sessionId).join() ===
          "dropped,dropped-2",
        2000,
      ),
    ).toBe(true);
  });

  it("stores none of the pipelined sync requests a Delete left unacknowledged", async () => {
    const { client } = await start();
    const total = 3000;
    const acks: AppendResponse[] = [];
    let deleted: Promise<unknown> | undefined;
    const ended = await new Promise<ServiceError | undefined>((resolve) => {
      const stream = client.append();
      stream.on("data", (ack: AppendResponse) => {
        acks.push(ack);
        if (acks.length === 200) {
          deleted = new Promise((done) => client.delete({ sessionId: "raced" }, done));
        }
      });
      stream.on("error", resolve);
      stream.on("end", () => resolve(undefined));
      for (let i = 0; i < total; i++) {
        stream.write({
          sessionId: "raced",
          messages: [`{"request":${i}}`],
          sync: true,
          labels: {},
        });
      }
      stream.end();
    });
    await deleted;
    // Acks arrive in request order: ack i is request i's. Those after the one whose seqs start
    // again at 0 went to the session the Delete left; the rest were deleted with it.
    const restart = acks.findIndex((ack, i) => i > 0 && ack.firstSeq === 0);
    const kept =
      restart === -1 ? [] : acks.slice(restart).map((_, i) => `{"request":${restart + i}}`);
    expect((await loadAll(client, "raced")).messages).toEqual(kept);
    if (ended) {
      expect(status[ended.code]).toBe("NOT_FOUND");
      expect(acks.length).toBeLessThan(total);
    }
  });

  it("answers DATA_LOSS for a record replaced by {XXXX…} of the same length, and refuses appends to it", async () => {
    const { client, dataDir } = await start();
    await append(client, [
      { sessionId: "rotted", messages: messages("r", 4), sync: true },
      { sessionId: "healthy", messages: messages("h", 1), sync: true },
    ]);
    const path = sessionFilePath(dataDir, "rotted");
    const text = await readFile(path, "utf8");
    const record = messages("r", 4)[2] as string;
    await writeFile(path, text.replace(record, `{${"X".repeat(record.length - 2)}}`));

    const error = await expectStatus(loadAll(client, "rotted"), status.DATA_LOSS, /\bseq 2\b/);
    expect(error.details).not.toContain(dataDir);
    const refused = await appendStream(client, [
      { sessionId: "rotted", messages: messages("r", 1, 4) },
    ]);
    expect(refused.acks).toEqual([]);
    expect(refused.error?.code).toBe(status.DATA_LOSS);
    // Flush of every session flushes the healthy ones and reports the corrupt one.
    await append(client, [{ sessionId: "healthy", messages: messages("h", 1, 1) }]);
    const report = await flush(client, "");
    expect(report.failures.map((failure) => [failure.sessionId, failure.code])).toEqual([
      ["rotted", status.DATA_LOSS],
    ]);
    expect(await loadMeta(client, "healthy")).toMatchObject({ messageCount: 2, durableCount: 2 });
  });

  it("lists past a directory named like a session file", async () => {
    const { client, dataDir } = await start();
    await append(client, [
      { sessionId: "a", messages: messages("a", 1) },
      { sessionId: "c", messages: messages("c", 1) },
    ]);
    await mkdir(sessionFilePath(dataDir, "b"));
    await append(client, [{ sessionId: "d", messages: messages("d", 1) }]);
    const first = await list(client, { pageSize: 2 });
    expect(first.sessions.map((meta) => meta.sessionId)).toEqual(["a", "c"]);
    const next = await list(client, { pageSize: 2, pageToken: first.nextPageToken });
    expect(next.sessions.map((meta) => meta.sessionId)).toEqual(["d"]);
    expect(next.nextPageToken).toBe("");
    await expectStatus(loadMeta(client, "b"), status.FAILED_PRECONDITION, /not a regular file/);
  });

  it("neither reads nor writes through a symbolic link out of the data directory", async () => {
    const { client, dataDir } = await start();
    const elsewhere = join(await makeTempDir("elsewhere-"), "file.jsonl");
    const secret = '{"secret":"do not serve"}\n';
    await writeFile(elsewhere, secret);
    await symlink(elsewhere, sessionFilePath(dataDir, "evil"));

    const error = await expectStatus(loadAll(client, "evil"), status.FAILED_PRECONDITION);
    expect(error.details).not.toContain(elsewhere);
    const refused = await appendStream(client, [
      { sessionId: "evil", messages: messages("e", 1), sync: true },
    ]);
    expect(refused.error?.code).toBe(status.FAILED_PRECONDITION);
    await flush(client, "");
    expect(await readFile(elsewhere, "utf8")).toBe(secret);
    expect((await list(client, {})).sessions).toEqual([]);
  });
});
