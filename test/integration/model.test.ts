import { type ServiceError, status } from "@grpc/grpc-js";
import fc from "fast-check";
import { expect, it } from "vitest";
import type { AppendRequest, AppendResponse } from "../../gen/sessionstore/v1/session_store.js";
import {
  appendStream,
  loadAll,
  startTestServer,
  type TestServer,
  unaryRpcs,
} from "../helpers/test-server.js";
import {
  type Backend,
  deleteSession,
  describeEachBackend,
  expectStatus,
  flush,
  list,
  loadMeta,
  storageOf,
} from "./support.js";

/**
 * Property-based tests: random sequences of commands run against the real server (through the
 * generated client) and against a plain in-memory model of the contract (a Map of arrays); after
 * every command the two must agree. fast-check prints the seed and path of a failure; replay it
 * with SESSIONSTORE_MODEL_SEED=<seed> SESSIONSTORE_MODEL_PATH=<path> (SESSIONSTORE_MODEL_RUNS
 * changes the number of runs).
 */

const NUM_RUNS = Number(process.env.SESSIONSTORE_MODEL_RUNS ?? 40);
const REPLAY = process.env.SESSIONSTORE_MODEL_SEED
  ? {
      seed: Number(process.env.SESSIONSTORE_MODEL_SEED),
      ...(process.env.SESSIONSTORE_MODEL_PATH ? { path: process.env.SESSIONSTORE_MODEL_PATH } : {}),
    }
  : {};

/** Few sessions, so that commands meet; one id uses every punctuation character allowed. */
const SESSIONS = ["m-a", "m-b", "m:c.d@e~f_g", "m-fork"] as const;

/** The labels commands set: few keys and values, so that changes meet and undo each other. */
const LABEL_KEYS = ["user", "example.com/env"] as const;
const LABEL_VALUES = ["", "alice", "bob"] as const;

/** Small flush threshold so writes interleave with buffering; no timed flush, so that durable
 * counts change only when the model says. Two open files for three sessions: handles are evicted. */
const SERVER_CONFIG = { flushMessages: 3, flushIntervalMs: 600_000, maxOpenFiles: 2 };

// --- commands ---------------------------------------------------------------------------------

type ExpectedSeq =
  | { kind: "none" }
  | { kind: "correct" }
  /** The session's length plus `delta` (never the length itself). */
  | { kind: "wrong"; delta: number }
  /** An earlier acknowledged request again, at its seq, with `extra` new messages after it. */
  | { kind: "resend"; pick: number; extra: number };

interface AppendSpec {
  session: number;
  messages: string[];
  sync: boolean;
  expected: ExpectedSeq;
}

type Command =
  | { type: "append"; requests: AppendSpec[] }
  | { type: "flush"; session: number | undefined }
  | { type: "load"; session: number; fromSeq: number; limit: number; last: boolean }
  | { type: "loadMeta"; session: number }
  | { type: "list"; pageSize: number }
  | { type: "delete"; session: number }
  | { type: "restart" }
  | { type: "fork"; session: number; atSeq: number; into: number }
  | { type: "rewind"; session: number; toSeq: number; expected: "none" | "correct" | "wrong" }
  | { type: "trim"; session: number; beforeSeq: number }
  | {
      type: "setLabels";
      session: number;
      labels: Record<string, string>;
      expected: "none" | "correct" | "wrong";
    };

/**
 * One JSON object as an agent may send it: digits past 2^53, escapes that re-serializing would
 * rewrite, astral and combining characters, U+2028, raw CR/LF between tokens (stored as spaces),
 * and random text.
 */
const messageArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "{}",
    '{"n":123456789012345678901234567890,"f":1.10,"e":-0.0e+0}',
    '{ "esc" : "\\u00e9\\n\\"\\\\\\/" , "t" : "\\t" }',
    '{"u":"🦀 日本 e\u0301 \u2028 \u00a0"}',
    '{"crlf":\r\n[1,\n2],\r"x":null}',
    '{"nested":{"a":[{},[],null,true,{"b":{"c":[0]}}]}}',
  ),
  fc
    .record({ text: fc.string({ unit: "binary", maxLength: 12 }), n: fc.bigInt() })
    .map(({ text, n }) => `{"text":${JSON.stringify(text)},"n":${n}}`),
);

const expectedSeqArb: fc.Arbitrary<ExpectedSeq> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: "correct" as const }) },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: -3, max: 3 })
      .filter((delta) => delta !== 0)
      .map((delta) => ({ kind: "wrong" as const, delta })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ pick: fc.nat(), extra: fc.integer({ min: 0, max: 2 }) })
      .map(({ pick, extra }) => ({ kind: "resend" as const, pick, extra })),
  },
);

function sessionAt(index: number): string {
  return SESSIONS[index % SESSIONS.length] as string;
}

const sessionArb = fc.integer({ min: 0, max: SESSIONS.length - 1 });

const appendSpecArb: fc.Arbitrary<AppendSpec> = fc.record({
  session: sessionArb,
  messages: fc.array(messageArb, { maxLength: 5 }),
  sync: fc.boolean(),
  expected: expectedSeqArb,
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      type: fc.constant("append" as const),
      requests: fc.array(appendSpecArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("flush" as const),
      session: fc.option(sessionArb, { nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant("load" as const),
      session: sessionArb,
      fromSeq: fc.nat({ max: 30 }),
      limit: fc.nat({ max: 12 }),
      last: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("loadMeta" as const), session: sessionArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("list" as const),
      pageSize: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("delete" as const), session: sessionArb }),
  },
  { weight: 1, arbitrary: fc.constant({ type: "restart" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("fork" as const),
      session: sessionArb,
      atSeq: fc.nat({ max: 8 }),
      into: sessionArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("rewind" as const),
      session: sessionArb,
      toSeq: fc.nat({ max: 8 }),
      expected: fc.constantFrom("none" as const, "correct" as const, "wrong" as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("trim" as const),
      session: sessionArb,
      beforeSeq: fc.nat({ max: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("setLabels" as const),
      session: sessionArb,
      labels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), {
        maxKeys: 2,
      }),
      expected: fc.constantFrom("none" as const, "correct" as const, "wrong" as const),
    }),
  },
);

/** What the runs exercised, printed at the end. */
const stats = {
  commands: 0,
  acks: 0,
  aborted: 0,
  retriesAcknowledged: 0,
  restarts: 0,
  deletes: 0,
  forks: 0,
  rewinds: 0,
  trims: 0,
  labelChanges: 0,
};

// --- the model --------------------------------------------------------------------------------

interface ModelSession {
  /** Every message by seq; those before `firstSeq` were trimmed (kept here only as positions). */
  log: string[];
  firstSeq: number;
  labels: Record<string, string>;
  labelsRevision: number;
  parent?: { sessionId: string; seq: number };
  /** Messages [0, durable) are certainly durable; the server may report more, up to the length. */
  durable: number;
  /**
   * Messages [0, written) are certainly in storage's files (a Flush or a shutdown wrote them):
   * a durable message may not be (the file backend's journal holds it).
   */
  written: number;
  /** Seen once through LoadMeta; must never change while the session lives. */
  createdAtMs?: number;
}

type AppendOutcome =
  | { ack: { sessionId: string; firstSeq: number; nextSeq: number } }
  | { aborted: number };

/** The contract, written down as plainly as possible. */
class Model {
  readonly sessions = new Map<string, ModelSession>();
  /** Acknowledged requests that had messages, for resends. */
  readonly history: { sessionId: string; firstSeq: number; messages: string[] }[] = [];

  length(sessionId: string): number {
    return this.sessions.get(sessionId)?.log.length ?? 0;
  }

  /** Raw CR/LF (only ever whitespace between tokens) are stored as spaces; all else byte for byte. */
  static stored(message: string): string {
    return message.replace(/[\r\n]/g, " ");
  }

  append(sessionId: string, raw: string[], expectedSeq: number | undefined): AppendOutcome {
    const messages = raw.map(Model.stored);
    const session = this.sessions.get(sessionId);
    const length = session?.log.length ?? 0;
    const ack = (firstSeq: number, nextSeq: number) => ({
      ack: { sessionId, firstSeq, nextSeq },
    });
    if (expectedSeq === undefined || expectedSeq === length) {
      if (messages.length === 0) return ack(length, length); // creates nothing
      this.log(sessionId).push(...messages);
      return ack(length, length + messages.length);
    }
    if (session && expectedSeq < length && expectedSeq >= session.firstSeq && messages.length > 0) {
      // A retry: what is stored from expected_seq on equals the request's start.
      const overlap = Math.min(messages.length, length - expectedSeq);
      if (messages.slice(0, overlap).every((m, i) => session.log[expectedSeq + i] === m)) {
        session.log.push(...messages.slice(overlap));
        return ack(expectedSeq, expectedSeq + messages.length);
      }
    }
    return { aborted: length };
  }

  private log(sessionId: string): string[] {
    let session = this.sessions.get(sessionId);
    if (!session) {
      session = { log: [], durable: 0, written: 0, firstSeq: 0, labels: {}, labelsRevision: 0 };
      this.sessions.set(sessionId, session);
    }
    return session.log;
  }

  /**
   * What Load returns: from from_seq (0: the first kept), at most `limit` (the last ones with
   * `last`), and its first seq; or the first kept seq, when from_seq is below it.
   */
  load(
    sessionId: string,
    fromSeq: number,
    limit: number,
    last: boolean,
  ): { firstSeq: number; messages: string[] } | { trimmedBefore: number } {
    const session = this.sessions.get(sessionId);
    const firstKept = session?.firstSeq ?? 0;
    if (fromSeq !== 0 && fromSeq < firstKept) return { trimmedBefore: firstKept };
    const from = Math.max(fromSeq, firstKept);
    const log = session?.log ?? [];
    const start = limit > 0 && last ? Math.max(from, log.length - limit) : from;
    const end = limit > 0 && !last ? Math.min(log.length, from + limit) : log.length;
    return { firstSeq: start, messages: log.slice(start, Math.max(start, end)) };
  }

  /** The kept messages of a session. */
  kept(sessionId: string): string[] {
    const session = this.sessions.get(sessionId);
    return session ? session.log.slice(session.firstSeq) : [];
  }

  makeDurable(sessionId?: string): void {
    for (const [id, session] of this.sessions) {
      if (sessionId === undefined || id === sessionId) {
        session.durable = session.log.length;
        session.written = session.log.length;
      }
    }
  }
}

// --- running commands against both -----------------------------------------------------------

class Run {
  model = new Model();
  private constructor(
    public server: TestServer,
    private readonly backend: Backend,
  ) {}

  static async start(backend: Backend): Promise<Run> {
    return new Run(await startTestServer({ ...SERVER_CONFIG, storage: backend }), backend);
  }

  async close(): Promise<void> {
    await this.server.close();
  }

  async execute(command: Command): Promise<void> {
    const { client } = this.server;
    const model = this.model;
    switch (command.type) {
      case "append":
        return this.append(command.requests);
      case "flush": {
        const sessionId = command.session === undefined ? "" : sessionAt(command.session);
        const involved = [...model.sessions].filter(([id]) => sessionId === "" || id === sessionId);
        const unwritten = involved.reduce((sum, [, s]) => sum + s.log.length - s.written, 0);
        const { flushed } = await flush(client, sessionId);
        expect(flushed).toBeGreaterThanOrEqual(0);
        expect(flushed, "Flush writes at most what no Flush wrote before").toBeLessThanOrEqual(
          unwritten,
        );
        model.makeDurable(sessionId === "" ? undefined : sessionId);
        return;
      }
      case "load": {
        const sessionId = sessionAt(command.session);
        const { fromSeq, limit, last } = command;
        const expected = model.load(sessionId, fromSeq, limit, last);
        if ("trimmedBefore" in expected) {
          const error = await expectStatus(
            loadAll(client, sessionId, { fromSeq, limit, last }),
            status.OUT_OF_RANGE,
          );
          expect(error.metadata.get("sessionstore-first-seq")).toEqual([
            String(expected.trimmedBefore),
          ]);
          return;
        }
        const loaded = await loadAll(client, sessionId, { fromSeq, limit, last });
        expect(loaded.messages).toEqual(expected.messages);
        if (expected.messages.length > 0) expect(loaded.firstSeq).toBe(expected.firstSeq);
        return;
      }
      case "loadMeta":
        return this.checkMeta(sessionAt(command.session));
      case "list": {
        const seen: { id: string; count: number }[] = [];
        let pageToken = "";
        do {
          const page = await list(client, { pageSize: command.pageSize, pageToken });
          expect(page.sessions.length).toBeLessThanOrEqual(command.pageSize);
          for (const meta of page.sessions) {
            seen.push({ id: meta.sessionId, count: meta.messageCount });
          }
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        const expected = [...model.sessions]
          .map(([id, session]) => ({ id, count: session.log.length }))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        expect(seen).toEqual(expected);
        return;
      }
      case "delete": {
        const sessionId = sessionAt(command.session);
        stats.deletes++;
        const { existed } = await deleteSession(client, sessionId);
        expect(existed).toBe(model.sessions.has(sessionId));
        model.sessions.delete(sessionId);
        return;
      }
      case "fork":
        return this.fork(sessionAt(command.session), command.atSeq, sessionAt(command.into));
      case "rewind":
        return this.rewind(sessionAt(command.session), command.toSeq, command.expected);
      case "trim":
        return this.trim(sessionAt(command.session), command.beforeSeq);
      case "setLabels":
        return this.setLabels(sessionAt(command.session), command.labels, command.expected);
      case "restart": {
        stats.restarts++;
        await this.server.stop();
        this.server = await startTestServer({ ...SERVER_CONFIG, ...storageOf(this.server) });
        // A graceful stop wrote and fsynced everything; the memory backend keeps nothing.
        if (this.backend === "memory") this.model = new Model();
        else this.model.makeDurable();
        return;
      }
    }
  }

  private async fork(sessionId: string, atSeq: number, into: string): Promise<void> {
    const rpc = unaryRpcs(this.server.client);
    const source = this.model.sessions.get(sessionId);
    const request = rpc.fork({ sessionId, atSeq, newSessionId: into });
    if (!source) return void (await expectStatus(request, status.NOT_FOUND));
    // The source's checks come first: an at_seq out of its range, then the new id taken.
    if (atSeq > source.log.length || atSeq < source.firstSeq) {
      return void (await expectStatus(request, status.OUT_OF_RANGE));
    }
    if (this.model.sessions.has(into)) {
      return void (await expectStatus(request, status.ALREADY_EXISTS));
    }
    stats.forks++;
    const { meta } = await request;
    expect(meta).toMatchObject({
      parentSessionId: sessionId,
      parentSeq: atSeq,
      messageCount: atSeq,
    });
    this.model.sessions.set(into, {
      log: source.log.slice(0, atSeq),
      firstSeq: source.firstSeq,
      // A fork is durable when it answers, its shared messages written.
      durable: atSeq,
      written: atSeq,
      labels: { ...source.labels },
      labelsRevision: Object.keys(source.labels).length > 0 ? 1 : 0,
      parent: { sessionId, seq: atSeq },
    });
  }

  private async rewind(
    sessionId: string,
    toSeq: number,
    expected: "none" | "correct" | "wrong",
  ): Promise<void> {
    const session = this.model.sessions.get(sessionId);
    const length = session?.log.length ?? 0;
    const expectedSeq =
      expected === "none" ? undefined : expected === "correct" ? length : length + 1;
    const request = unaryRpcs(this.server.client).rewind({
      sessionId,
      toSeq,
      ...(expectedSeq === undefined ? {} : { expectedSeq }),
    });
    if (!session) return void (await expectStatus(request, status.NOT_FOUND));
    if (expectedSeq !== undefined && expectedSeq !== length) {
      const error = await expectStatus(request, status.ABORTED);
      expect(error.metadata.get("sessionstore-actual-length")).toEqual([String(length)]);
      return;
    }
    if (toSeq > length || toSeq < session.firstSeq) {
      return void (await expectStatus(request, status.OUT_OF_RANGE));
    }
    stats.rewinds++;
    const { droppedMessages, meta } = await request;
    expect(droppedMessages).toEqual(session.log.slice(toSeq));
    expect(meta?.messageCount).toBe(toSeq);
    session.log.length = toSeq;
    session.durable = Math.min(session.durable, toSeq);
    session.written = Math.min(session.written, toSeq);
  }

  private async trim(sessionId: string, beforeSeq: number): Promise<void> {
    const session = this.model.sessions.get(sessionId);
    const request = unaryRpcs(this.server.client).trim({ sessionId, beforeSeq });
    if (!session) return void (await expectStatus(request, status.NOT_FOUND));
    if (beforeSeq > session.log.length) {
      return void (await expectStatus(request, status.OUT_OF_RANGE));
    }
    stats.trims++;
    const { trimmed, meta } = await request;
    expect(trimmed).toBe(Math.max(0, beforeSeq - session.firstSeq));
    session.firstSeq = Math.max(session.firstSeq, beforeSeq);
    expect(meta?.firstSeq).toBe(session.firstSeq);
  }

  private async setLabels(
    sessionId: string,
    change: Record<string, string>,
    expected: "none" | "correct" | "wrong",
  ): Promise<void> {
    const session = this.model.sessions.get(sessionId);
    const revision = session?.labelsRevision ?? 0;
    const expectedLabelsRevision =
      expected === "none" ? undefined : expected === "correct" ? revision : revision + 1;
    const request = unaryRpcs(this.server.client).setLabels({
      sessionId,
      labels: change,
      ...(expectedLabelsRevision === undefined ? {} : { expectedLabelsRevision }),
    });
    if (!session) return void (await expectStatus(request, status.NOT_FOUND));
    if (expectedLabelsRevision !== undefined && expectedLabelsRevision !== revision) {
      return void (await expectStatus(request, status.ABORTED));
    }
    stats.labelChanges++;
    const next = { ...session.labels };
    for (const [key, value] of Object.entries(change)) {
      if (value === "") delete next[key];
      else next[key] = value;
    }
    const changed =
      Object.keys(next).length !== Object.keys(session.labels).length ||
      Object.entries(next).some(([key, value]) => session.labels[key] !== value);
    session.labels = next;
    if (changed) session.labelsRevision++;
    const { meta } = await request;
    expect(meta?.labels).toEqual(next);
    expect(meta?.labelsRevision).toBe(session.labelsRevision);
  }

  /** One Append stream with the requests in order; the first ABORTED one ends it. */
  private async append(specs: AppendSpec[]): Promise<void> {
    const model = this.model;
    const durableBefore = new Map([...model.sessions].map(([id, s]) => [id, s.durable]));
    const requests: AppendRequest[] = [];
    const expectedAcks: { sessionId: string; firstSeq: number; nextSeq: number; sync: boolean }[] =
      [];
    let expectedAbort: number | undefined;
    for (const spec of specs) {
      let sessionId: string = sessionAt(spec.session);
      let messages = spec.messages;
      let expectedSeq: number | undefined;
      const length = model.length(sessionId);
      const resent =
        spec.expected.kind === "resend" && model.history.length > 0
          ? model.history[spec.expected.pick % model.history.length]
          : undefined;
      if (resent && spec.expected.kind === "resend") {
        sessionId = resent.sessionId;
        messages = [...resent.messages, ...spec.messages.slice(0, spec.expected.extra)];
        expectedSeq = resent.firstSeq;
      } else if (spec.expected.kind === "correct") {
        expectedSeq = length;
      } else if (spec.expected.kind === "wrong") {
        const wrong = length + spec.expected.delta;
        expectedSeq = wrong >= 0 ? wrong : length + 1;
      }
      requests.push({
        sessionId,
        messages,
        sync: spec.sync,
        labels: {},
        ...(expectedSeq === undefined ? {} : { expectedSeq }),
      });
      // The model decides request by request; after an ABORTED one the stream stores no more.
      const outcome = model.append(sessionId, messages, expectedSeq);
      if ("aborted" in outcome) {
        expectedAbort = outcome.aborted;
        break;
      }
      expectedAcks.push({ ...outcome.ack, sync: spec.sync });
      if (resent) stats.retriesAcknowledged++;
      if (messages.length > 0) {
        model.history.push({ sessionId, firstSeq: outcome.ack.firstSeq, messages });
      }
    }

    const { acks, error } = await appendStream(this.server.client, requests);
    stats.acks += acks.length;
    if (expectedAbort !== undefined) stats.aborted++;
    expect(
      acks.map(({ sessionId, firstSeq, nextSeq }) => ({ sessionId, firstSeq, nextSeq })),
    ).toEqual(
      expectedAcks.map(({ sessionId, firstSeq, nextSeq }) => ({ sessionId, firstSeq, nextSeq })),
    );
    if (expectedAbort === undefined) {
      expect(error, `unexpected ${error?.code} ${error?.details}`).toBeUndefined();
    } else {
      expect(status[error?.code ?? status.OK], error?.details).toBe("ABORTED");
      const actual = (error as ServiceError).metadata?.get("sessionstore-actual-length")[0];
      expect(Number(actual)).toBe(expectedAbort);
    }
    if (this.backend === "memory") {
      // Nothing survives the process, so nothing is ever counted durable.
      for (const ack of acks) expect(ack.durableCount).toBe(0);
      return;
    }
    acks.forEach((ack: AppendResponse, index) => {
      const expected = expectedAcks[index] as (typeof expectedAcks)[number];
      const length = model.length(ack.sessionId);
      expect(ack.durableCount).toBeLessThanOrEqual(Math.max(length, ack.nextSeq));
      if (expected.sync) {
        expect(ack.durableCount, "a sync ack covers its messages").toBeGreaterThanOrEqual(
          ack.nextSeq,
        );
        const session = model.sessions.get(ack.sessionId);
        if (session) session.durable = Math.max(session.durable, ack.nextSeq);
      } else {
        expect(ack.durableCount).toBeGreaterThanOrEqual(durableBefore.get(ack.sessionId) ?? 0);
      }
    });
  }

  /** LoadMeta agrees with the model: NOT_FOUND, or the count, durable count and creation time. */
  async checkMeta(sessionId: string): Promise<void> {
    const session = this.model.sessions.get(sessionId);
    if (!session) {
      await expectStatus(loadMeta(this.server.client, sessionId), status.NOT_FOUND);
      return;
    }
    const meta = await loadMeta(this.server.client, sessionId);
    expect(meta.sessionId).toBe(sessionId);
    expect(meta.messageCount).toBe(session.log.length);
    expect(meta.firstSeq).toBe(session.firstSeq);
    expect(meta.labels).toEqual(session.labels);
    expect(meta.labelsRevision).toBe(session.labelsRevision);
    expect({ id: meta.parentSessionId, seq: meta.parentSeq }).toEqual({
      id: session.parent?.sessionId ?? "",
      seq: session.parent?.seq ?? 0,
    });
    if (this.backend === "memory") expect(meta.durableCount).toBe(0);
    else expect(meta.durableCount).toBeGreaterThanOrEqual(session.durable);
    expect(meta.durableCount).toBeLessThanOrEqual(session.log.length);
    session.durable = meta.durableCount; // durability never goes back
    session.createdAtMs ??= meta.createdAtMs;
    expect(meta.createdAtMs, "created_at_ms never changes").toBe(session.createdAtMs);
  }

  /** After every command: every session loads exactly as the model holds it. */
  async checkAll(): Promise<void> {
    for (const sessionId of SESSIONS) {
      const { messages } = await loadAll(this.server.client, sessionId);
      expect(messages, sessionId).toEqual(this.model.kept(sessionId));
      await this.checkMeta(sessionId);
    }
  }
}

/** A command that hangs fails its run (and is shrunk) instead of stalling the whole test. */
const COMMAND_TIMEOUT_MS = 5_000;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describeCommand(command: Command): string {
  return JSON.stringify(command);
}

describeEachBackend(
  "the server against a model of the contract",
  (_start, backend) => {
    it("agrees with the model after every command of random sequences", async () => {
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(
          fc.array(commandArb, { minLength: 5, maxLength: 40, size: "max" }),
          async (commands) => {
            const run = await Run.start(backend);
            try {
              for (const [index, command] of commands.entries()) {
                try {
                  await withTimeout(run.execute(command), COMMAND_TIMEOUT_MS);
                  await withTimeout(run.checkAll(), COMMAND_TIMEOUT_MS);
                } catch (error) {
                  if (error instanceof Error) {
                    error.message = `command ${index} ${describeCommand(command)}: ${error.message}`;
                  }
                  throw error;
                }
                stats.commands++;
              }
            } finally {
              await run.close();
            }
          },
        ),
        {
          numRuns: NUM_RUNS,
          interruptAfterTimeLimit: 90_000,
          markInterruptAsFailure: true,
          ...REPLAY,
        },
      );
      console.log(
        `model test: ${NUM_RUNS} runs in ${Date.now() - started} ms: ${JSON.stringify(stats)}`,
      );
    }, 150_000);
  },
  {},
);
