import { appendFile, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type {
  AppendRequest,
  AppendResponse,
  ForkRequest,
  ForkResponse,
  RewindRequest,
  RewindResponse,
  SessionStoreClient,
  TrimRequest,
  TrimResponse,
} from "../../gen/sessionstore/v1/session_store.js";
import { journalSegments } from "../../src/store/jsonl/journal.js";
import { encodeRecord } from "../../src/store/jsonl/journal-records.js";
import { replayJournal } from "../../src/store/jsonl/journal-replay.js";
import { type ChildServer, spawnChildServer, startChildServer } from "../helpers/child-server.js";
import { between, mulberry32, type Random } from "../helpers/random.js";
import {
  appendStream,
  loadAll,
  makeTempDir,
  readLikeMotosan,
  unary,
  unaryRpcs,
} from "../helpers/test-server.js";

/**
 * Issue 3, "Acknowledged data is never lost": the server runs as a child process while several
 * writers append with durable acknowledgements; it is killed with SIGKILL at random moments and
 * restarted on the same data directory. After every restart each acknowledged message must be
 * served at its acknowledged seq, exactly once, byte for byte, and the files must stay readable the
 * way motosan reads them.
 *
 * Issue 14: reshapers meanwhile rewind, trim, fork and delete sessions of their own (and append to
 * them). After every restart each of their sessions must be exactly as the last answered
 * operation left it, or, for the one operation the kill interrupted, as it was before or after
 * that operation: never between, never a mix.
 *
 * Issue 17: durable appends go to a journal first, and the session files get them later. The
 * journal's segments are small here, so checkpoints (which fsync files and delete segments) run
 * all the time and kills land in them; after some kills the journal's last record is torn as a
 * crash during its write would leave it (a torn record names a real file: replayed, it would
 * add a message no writer sent), and some restarts are killed while they replay the journal.
 *
 * Replay a failure with the seed it printed: SESSIONSTORE_CRASH_SEED=<seed> npx vitest run
 * test/process/crash.test.ts (SESSIONSTORE_CRASH_ROUNDS raises the number of kills). The seed fixes
 * the writers' choices and the kill moments; the interleaving with the server is still the OS's.
 */

const SEED = Number(process.env.SESSIONSTORE_CRASH_SEED ?? 0x5e55_1057) >>> 0;
const ROUNDS = Math.max(1, Number(process.env.SESSIONSTORE_CRASH_ROUNDS ?? 20));
const KILL_AFTER_MS = { min: 20, max: 250 };
/** Small, so that checkpoints run all the time under the writers. */
const JOURNAL_SEGMENT_BYTES = 16 << 10;

/** Who writes where: solo sessions have one (pipelining) writer, shared ones race on expected_seq. */
const WRITERS: readonly { sessions: readonly string[]; solo: boolean }[] = [
  { sessions: ["solo-a"], solo: true },
  { sessions: ["solo.b"], solo: true },
  { sessions: ["pair"], solo: false },
  { sessions: ["pair", "trio:x@y~z"], solo: false },
  { sessions: ["trio:x@y~z"], solo: false },
  { sessions: ["trio:x@y~z"], solo: false },
];
const SESSIONS = [...new Set(WRITERS.flatMap((writer) => writer.sessions))];

/**
 * Message bodies that break naive storage: digits past 2^53, escapes that re-serializing would
 * rewrite, astral and combining characters, U+2028/2029 (valid raw inside JSON strings), odd
 * whitespace between tokens, and sizes from tiny to a few KB.
 */
const BODIES: readonly ((id: string, random: Random) => string)[] = [
  (id) => `{"id":"${id}","n":12345678901234567890123,"neg":-98765432109876543210}`,
  (id) => `{"id":"${id}","text":"caf\\u00e9 \\/ \\"quoted\\" back\\\\slash \\n\\t\\r"}`,
  (id) => `{ "id" : "${id}" ,\t"crab":"🦀","zwj":"👩‍👩‍👧","accent":"é","cjk":"日本語" }`,
  (id) => `{"id":"${id}","seps":"\u2028\u2029","pair":"\\ud83e\\udd80","nul":"\\u0000"}`,
  (id) => `{"id":"${id}","nested":{"a":[1,2.50,{"b":null,"c":[true,false]}],"e":{}},"f":1e-7}`,
  (id, random) => `{"id":"${id}","pad":"${"ä".repeat(between(random, 0, 1500))}"}`,
];

/** Every message any writer created, with who created it and in which order. */
const origins = new Map<string, { writer: number; n: number }>();

/** What the acknowledgements promised: per session, seq -> message. */
const acknowledged = new Map<string, Map<number, string>>(SESSIONS.map((id) => [id, new Map()]));
/** Things that went wrong inside stream callbacks, reported by the test body. */
const problems: string[] = [];
const stats = { acks: 0, retriedAcks: 0, aborted: 0, partlyStored: 0, recoveries: 0 };
const journalStats = { checkpointsUnderWay: 0, tornTails: 0, restartsKilled: 0, replaysKilled: 0 };

interface PendingRequest {
  sessionId: string;
  messages: string[];
  expectedSeq: number;
  /** Sent before a crash, now resent: its ack may be the retry of a stored request. */
  resent?: boolean;
}

function recordAck(writer: number, request: PendingRequest, ack: AppendResponse): void {
  stats.acks++;
  if (request.resent) stats.retriedAcks++;
  const { sessionId, messages, expectedSeq } = request;
  const where = `writer ${writer}, ${sessionId} at ${expectedSeq}`;
  if (ack.sessionId !== sessionId) problems.push(`${where}: ack names session ${ack.sessionId}`);
  if (ack.firstSeq !== expectedSeq || ack.nextSeq !== expectedSeq + messages.length) {
    problems.push(
      `${where}: ack [${ack.firstSeq}, ${ack.nextSeq}) for ${messages.length} messages`,
    );
  }
  if (ack.durableCount < ack.nextSeq) {
    problems.push(`${where}: sync ack with durable_count ${ack.durableCount} < ${ack.nextSeq}`);
  }
  const log = acknowledged.get(sessionId) as Map<number, string>;
  messages.forEach((message, index) => {
    const seq = ack.firstSeq + index;
    const earlier = log.get(seq);
    if (earlier !== undefined && earlier !== message) {
      problems.push(`${where}: seq ${seq} acknowledged twice, as ${earlier} and as ${message}`);
    }
    log.set(seq, message);
  });
}

/** The length a failed Append stream reported in its ABORTED trailers. */
function actualLength(error: ServiceError): number | undefined {
  const value = error.metadata?.get("sessionstore-actual-length")[0];
  return value === undefined ? undefined : Number(value);
}

interface RoundContext {
  client: SessionStoreClient;
  /** Whether the server runs with --durability sync (requests then need not ask for sync). */
  syncServer: boolean;
  /** Set once the server is killed: writers stop opening streams. */
  killed: boolean;
}

/**
 * One writer: one Append stream at a time, every request with expected_seq. A writer keeps what it
 * sent but did not see acknowledged across a crash and resends it first, with the same expected_seq.
 */
class Writer {
  private counter = 0;
  /** Sent, not acknowledged, outcome unknown (the server died): resent first next round. */
  private uncertain: PendingRequest[] = [];
  /** Messages known not stored (their request was ABORTED): sent again before new ones. */
  private leftover = new Map<string, string[]>();
  /** This writer's view of each session's length. */
  private readonly lengths = new Map<string, number>();

  constructor(
    private readonly index: number,
    private readonly sessions: readonly string[],
    private readonly solo: boolean,
    private readonly random: Random,
  ) {}

  async run(round: RoundContext): Promise<void> {
    while (!round.killed) {
      const outcome = this.solo ? await this.runSolo(round) : await this.runShared(round);
      if (outcome === "interrupted") return;
    }
  }

  private newMessages(): string[] {
    return Array.from({ length: between(this.random, 1, 5) }, () => {
      const n = this.counter++;
      const body = BODIES[between(this.random, 0, BODIES.length - 1)] as (typeof BODIES)[number];
      const message = body(`w${this.index}-${n}`, this.random);
      origins.set(message, { writer: this.index, n });
      return message;
    });
  }

  private request(round: RoundContext, pending: PendingRequest): AppendRequest {
    return {
      sessionId: pending.sessionId,
      messages: pending.messages,
      expectedSeq: pending.expectedSeq,
      // With --durability sync the server makes every ack durable; otherwise ask for it.
      sync: !round.syncServer || this.random() < 0.5,
      labels: {},
    };
  }

  /**
   * A solo session's writer pipelines up to a few requests: it alone writes there, so it knows
   * every expected_seq, and after a crash all its unacknowledged requests must be acknowledged when
   * resent in order (stored ones as retries, a partly stored one for its rest, the others anew).
   */
  private runSolo(round: RoundContext): Promise<"interrupted" | "again"> {
    const sessionId = this.sessions[0] as string;
    const depth = between(this.random, 1, 4);
    return new Promise((resolve) => {
      const stream = round.client.append();
      const inFlight: PendingRequest[] = [];
      const lastUncertain = this.uncertain.at(-1);
      let length = lastUncertain
        ? lastUncertain.expectedSeq + lastUncertain.messages.length
        : (this.lengths.get(sessionId) ?? 0);
      const send = (pending: PendingRequest) => {
        inFlight.push(pending);
        stream.write(this.request(round, pending));
      };
      const topUp = () => {
        while (!round.killed && inFlight.length < depth) {
          const messages = this.newMessages();
          send({ sessionId, messages, expectedSeq: length });
          length += messages.length;
        }
      };
      for (const pending of this.uncertain.splice(0)) send({ ...pending, resent: true });
      topUp();
      stream.on("data", (ack: AppendResponse) => {
        const pending = inFlight.shift();
        if (!pending) {
          problems.push(`writer ${this.index}: an ack for no request: ${JSON.stringify(ack)}`);
          return;
        }
        recordAck(this.index, pending, ack);
        this.lengths.set(sessionId, ack.nextSeq);
        topUp();
      });
      let done = false;
      // grpc-js may emit 'end' after 'error': only the first counts.
      const ended = (error?: ServiceError) => {
        if (done) return;
        done = true;
        if (!round.killed) {
          problems.push(
            `writer ${this.index}: stream ended before the kill: ${error?.code} ${error?.details}`,
          );
        }
        this.uncertain = inFlight.splice(0);
        resolve("interrupted");
      };
      stream.on("error", ended);
      stream.on("end", () => ended());
    });
  }

  /**
   * A shared session's writer sends one request at a time with expected_seq set to the length it
   * believes; an ABORTED stream tells it the actual length, and it tries again on a new stream.
   */
  private async runShared(round: RoundContext): Promise<"interrupted" | "again"> {
    let resent: PendingRequest | undefined = this.uncertain.shift();
    return new Promise((resolve) => {
      const stream = round.client.append();
      let current: PendingRequest | undefined;
      const sendNext = () => {
        if (round.killed) {
          stream.end();
          return;
        }
        if (resent) {
          current = { ...resent, resent: true };
          resent = undefined;
        } else {
          const sessionId = this.sessions[
            between(this.random, 0, this.sessions.length - 1)
          ] as string;
          const messages = this.leftover.get(sessionId) ?? this.newMessages();
          this.leftover.delete(sessionId);
          current = { sessionId, messages, expectedSeq: this.lengths.get(sessionId) ?? 0 };
        }
        stream.write(this.request(round, current));
      };
      stream.on("data", (ack: AppendResponse) => {
        if (!current) {
          problems.push(`writer ${this.index}: an ack for no request: ${JSON.stringify(ack)}`);
          return;
        }
        recordAck(this.index, current, ack);
        this.lengths.set(
          current.sessionId,
          Math.max(ack.nextSeq, this.lengths.get(current.sessionId) ?? 0),
        );
        current = undefined;
        sendNext();
      });
      // grpc-js may emit 'end' after 'error': only the first counts.
      let done = false;
      stream.on("error", (error: ServiceError) => {
        if (done) return;
        done = true;
        const failed = current;
        current = undefined;
        if (error.code !== status.ABORTED || !failed) {
          if (!round.killed) {
            problems.push(
              `writer ${this.index}: stream failed before the kill: ${error.code} ${error.details}`,
            );
          }
          // The server died (or is dying): what was in flight may or may not be stored.
          if (failed) this.uncertain.unshift(failed);
          resolve("interrupted");
          return;
        }
        stats.aborted++;
        const length = actualLength(error);
        if (length === undefined) problems.push(`writer ${this.index}: ABORTED without a length`);
        this.lengths.set(failed.sessionId, length ?? 0);
        if (!failed.resent) {
          // An ABORTED request stores nothing: its messages go out again at the new length.
          this.leftover.set(failed.sessionId, failed.messages);
          resolve("again");
          return;
        }
        // A resent request lost the race for its seq: find out how much of it a crash left stored.
        this.storedPrefix(round.client, failed).then(
          (stored) => {
            if (stored > 0) stats.partlyStored++;
            if (stored < failed.messages.length) {
              this.leftover.set(failed.sessionId, failed.messages.slice(stored));
            }
            resolve("again");
          },
          () => {
            this.uncertain.unshift(failed);
            resolve("interrupted");
          },
        );
      });
      stream.on("end", () => {
        if (done) return;
        done = true;
        if (current) {
          problems.push(`writer ${this.index}: the stream ended without acknowledging a request`);
          this.uncertain.unshift(current);
        }
        resolve("again");
      });
      sendNext();
    });
  }

  /** How many of the request's first messages the session holds at its expected_seq. */
  private async storedPrefix(client: SessionStoreClient, request: PendingRequest): Promise<number> {
    const { messages } = await loadAll(client, request.sessionId, {
      fromSeq: request.expectedSeq,
      limit: request.messages.length,
    });
    let stored = 0;
    while (stored < messages.length && messages[stored] === request.messages[stored]) stored++;
    return stored;
  }
}

/** A reshaper's session as it knows it: messages [firstSeq, firstSeq + messages.length). */
interface Shape {
  firstSeq: number;
  messages: string[];
}

/** A state a session may be in: its shape, or undefined when it does not exist. */
type SessionState = Shape | undefined;

/**
 * An operation whose answer the kill prevented: the sessions it touches and the states they may
 * be in, as alternatives (before, after, and for an append each prefix of its messages between).
 */
interface Unsettled {
  what: string;
  sessionIds: string[];
  outcomes: SessionState[][];
}

const reshapeStats = { appends: 0, rewinds: 0, trims: 0, forks: 0, deletes: 0, interrupted: 0 };

function sameState(a: SessionState, b: SessionState): boolean {
  if (!a || !b) return a === b;
  return (
    a.firstSeq === b.firstSeq &&
    a.messages.length === b.messages.length &&
    a.messages.every((message, index) => message === b.messages[index])
  );
}

function describeState(state: SessionState): string {
  return state ? `[${state.firstSeq}, +${state.messages.length}]` : "absent";
}

/**
 * One reshaper: runs one operation at a time on its own sessions (a root and the forks it makes),
 * each one durable when answered (appends with sync), and keeps the model of what they hold.
 */
class Reshaper {
  readonly shapes = new Map<string, Shape>();
  private unsettled: Unsettled | undefined;
  private counter = 0;
  private forks = 0;

  constructor(
    private readonly root: string,
    private readonly random: Random,
  ) {}

  /** Every session it may have made, whether or not it exists now. */
  get sessionIds(): string[] {
    return [this.root, ...Array.from({ length: this.forks }, (_, n) => `${this.root}~f${n}`)];
  }

  async run(round: RoundContext): Promise<void> {
    while (!round.killed) {
      const step = this.nextStep();
      this.unsettled = step.unsettled;
      try {
        await step.run(round.client);
      } catch (error) {
        if (!round.killed) {
          const { code, details } = error as ServiceError;
          problems.push(`${this.root}: ${step.unsettled.what} failed: ${code} ${details}`);
        }
        reshapeStats.interrupted++;
        return;
      }
      this.apply(step.unsettled.sessionIds, step.unsettled.outcomes.at(-1));
      this.unsettled = undefined;
    }
  }

  /** After a restart: each session is as modelled, the interrupted operation before or after. */
  async check(client: SessionStoreClient, when: string): Promise<void> {
    const actual = new Map<string, SessionState>();
    for (const id of this.sessionIds) actual.set(id, await readState(client, id));
    const unsettled = this.unsettled;
    this.unsettled = undefined;
    if (unsettled) {
      const matching = unsettled.outcomes.find((outcome) =>
        unsettled.sessionIds.every((id, index) => sameState(outcome[index], actual.get(id))),
      );
      expect(
        matching !== undefined,
        `${when}: after an interrupted ${unsettled.what}, ${unsettled.sessionIds
          .map((id) => `${id} is ${describeState(actual.get(id))}`)
          .join(", ")}; allowed: ${unsettled.outcomes
          .map((outcome) => outcome.map(describeState).join(" & "))
          .join(" | ")}`,
      ).toBe(true);
      this.apply(unsettled.sessionIds, matching);
    }
    for (const id of this.sessionIds) {
      const expected = this.shapes.get(id);
      const served = actual.get(id);
      expect(
        sameState(expected, served),
        `${when}: ${id} is ${describeState(served)}, its last answered operation left ${describeState(expected)}`,
      ).toBe(true);
    }
  }

  /** Takes `states` (one per session of `sessionIds`) as what the sessions now hold. */
  private apply(sessionIds: string[], states: SessionState[] | undefined): void {
    for (const [index, sessionId] of sessionIds.entries()) {
      const state = states?.[index];
      if (state) this.shapes.set(sessionId, state);
      else this.shapes.delete(sessionId);
    }
  }

  private nextStep(): { unsettled: Unsettled; run: (client: SessionStoreClient) => Promise<void> } {
    const existing = [...this.shapes.keys()];
    const sessionId =
      existing.length === 0
        ? this.root
        : (existing[between(this.random, 0, existing.length - 1)] as string);
    const shape = this.shapes.get(sessionId);
    const roll = this.random();
    if (!shape || roll < 0.45) return this.append(sessionId, shape);
    const length = shape.firstSeq + shape.messages.length;
    const seq = between(this.random, shape.firstSeq, length);
    if (roll < 0.6) return this.rewind(sessionId, shape, seq);
    if (roll < 0.75) return this.trim(sessionId, shape, seq);
    // A few sessions at a time: past them, a fork's turn deletes one instead.
    if (roll < 0.95 && this.shapes.size < 6) return this.fork(sessionId, shape, seq);
    return this.delete(sessionId, shape);
  }

  private append(sessionId: string, shape: SessionState) {
    const before = shape ?? { firstSeq: 0, messages: [] };
    const messages = Array.from(
      { length: between(this.random, 1, 3) },
      () => `{"shape":"${this.root}","n":${this.counter++}}`,
    );
    const length = before.firstSeq + before.messages.length;
    // A new session's file is created before its messages are written: it may exist empty.
    const outcomes: SessionState[][] = shape ? [] : [[undefined]];
    for (let stored = 0; stored <= messages.length; stored++) {
      outcomes.push([{ ...before, messages: [...before.messages, ...messages.slice(0, stored)] }]);
    }
    return {
      unsettled: { what: `append to ${sessionId} at ${length}`, sessionIds: [sessionId], outcomes },
      run: async (client: SessionStoreClient) => {
        const { acks, error } = await appendStream(client, [
          { sessionId, messages, expectedSeq: length, sync: true },
        ]);
        if (error) throw error;
        if (acks[0]?.firstSeq !== length) {
          problems.push(`${sessionId}: append at ${length} acknowledged at ${acks[0]?.firstSeq}`);
        }
        reshapeStats.appends++;
      },
    };
  }

  private rewind(sessionId: string, shape: Shape, toSeq: number) {
    const length = shape.firstSeq + shape.messages.length;
    const kept = shape.messages.slice(0, toSeq - shape.firstSeq);
    const dropped = shape.messages.slice(toSeq - shape.firstSeq);
    return {
      unsettled: {
        what: `rewind of ${sessionId} to ${toSeq}`,
        sessionIds: [sessionId],
        outcomes: [[shape], [{ firstSeq: shape.firstSeq, messages: kept }]],
      },
      run: async (client: SessionStoreClient) => {
        const answer = await unary<RewindRequest, RewindResponse>(
          (request, callback) => client.rewind(request, callback),
          { sessionId, toSeq, expectedSeq: length },
        );
        expect(answer.droppedMessages, `${sessionId}: rewind to ${toSeq} drops`).toEqual(dropped);
        reshapeStats.rewinds++;
      },
    };
  }

  private trim(sessionId: string, shape: Shape, beforeSeq: number) {
    const messages = shape.messages.slice(beforeSeq - shape.firstSeq);
    return {
      unsettled: {
        what: `trim of ${sessionId} before ${beforeSeq}`,
        sessionIds: [sessionId],
        outcomes: [[shape], [{ firstSeq: beforeSeq, messages }]],
      },
      run: async (client: SessionStoreClient) => {
        const answer = await unary<TrimRequest, TrimResponse>(
          (request, callback) => client.trim(request, callback),
          { sessionId, beforeSeq },
        );
        expect(answer.trimmed, `${sessionId}: trim before ${beforeSeq}`).toBe(
          beforeSeq - shape.firstSeq,
        );
        reshapeStats.trims++;
      },
    };
  }

  private fork(sessionId: string, shape: Shape, atSeq: number) {
    const newSessionId = `${this.root}~f${this.forks++}`;
    const fork = {
      firstSeq: shape.firstSeq,
      messages: shape.messages.slice(0, atSeq - shape.firstSeq),
    };
    return {
      unsettled: {
        what: `fork of ${sessionId} at ${atSeq} as ${newSessionId}`,
        sessionIds: [sessionId, newSessionId],
        outcomes: [
          [shape, undefined],
          [shape, fork],
        ],
      },
      run: async (client: SessionStoreClient) => {
        await unary<ForkRequest, ForkResponse>(
          (request, callback) => client.fork(request, callback),
          { sessionId, atSeq, newSessionId, labels: {} },
        );
        reshapeStats.forks++;
      },
    };
  }

  private delete(sessionId: string, shape: Shape) {
    return {
      unsettled: {
        what: `delete of ${sessionId}`,
        sessionIds: [sessionId],
        outcomes: [[shape], [undefined]],
      },
      run: async (client: SessionStoreClient) => {
        await unaryRpcs(client).delete({ sessionId });
        reshapeStats.deletes++;
      },
    };
  }
}

/** What the server serves of a session: undefined when it does not exist. */
async function readState(client: SessionStoreClient, sessionId: string): Promise<SessionState> {
  let firstSeq: number;
  try {
    const { meta } = await unaryRpcs(client).loadMeta({ sessionId });
    firstSeq = meta?.firstSeq ?? 0;
  } catch (error) {
    if ((error as ServiceError).code === status.NOT_FOUND) return undefined;
    throw error;
  }
  return { firstSeq, messages: (await loadAll(client, sessionId)).messages };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("crash: SIGKILL at random moments under durable writers", () => {
  let dataDir: string;
  let server: ChildServer | undefined;

  afterAll(async () => {
    server?.process.kill("SIGKILL");
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const serverArgs = (durability: "buffered" | "sync") => [
    "--data-dir",
    dataDir,
    "--durability",
    durability,
    "--journal-segment-bytes",
    String(JOURNAL_SEGMENT_BYTES),
  ];

  async function start(durability: "buffered" | "sync"): Promise<ChildServer> {
    server = await startChildServer(serverArgs(durability));
    return server;
  }

  const journalDirectory = () => join(dataDir, ".sessionstore", "journal");

  /** Ends the journal's last segment with part of a record, as a crash during its write would. */
  async function tearJournalTail(random: Random): Promise<void> {
    const segment = (await journalSegments(journalDirectory())).at(-1);
    const file = join(dataDir, "solo-a.jsonl");
    const target = await stat(file).catch(() => undefined);
    if (!segment || !target) return;
    const frame = Buffer.concat(
      encodeRecord({
        kind: "append",
        path: "solo-a.jsonl",
        inode: target.ino,
        start: target.size,
        bytes: Buffer.from('{"torn":"never acknowledged"}\n'),
      }),
    );
    await appendFile(segment, frame.subarray(0, between(random, 1, frame.length - 1)));
    journalStats.tornTails++;
  }

  /** Starts a server and kills it as soon as it replays the journal (or listens, with none). */
  async function killWhileStarting(random: Random): Promise<void> {
    const starting = spawnChildServer(serverArgs("buffered"));
    await Promise.race([
      starting.logged("replaying the journal an earlier run left"),
      starting.listening,
    ]).catch(() => undefined);
    await sleep(between(random, 0, 2));
    starting.process.kill("SIGKILL");
    await starting.exited;
    journalStats.restartsKilled++;
    const replaying = starting.logs.some(
      (entry) => entry.msg === "replaying the journal an earlier run left",
    );
    const replayed = starting.logs.some((entry) => entry.msg === "replayed the journal");
    if (replaying && !replayed) journalStats.replaysKilled++;
  }

  /** Checks what a restarted server serves against every acknowledgement so far. */
  async function expectServesAcknowledged(client: SessionStoreClient, when: string) {
    expect(problems, when).toEqual([]);
    const logs = new Map<string, string[]>();
    for (const sessionId of SESSIONS) {
      const { messages: log } = await loadAll(client, sessionId);
      logs.set(sessionId, log);
      const promised = acknowledged.get(sessionId) as Map<number, string>;
      const lost = [...promised].filter(([seq, message]) => log[seq] !== message);
      expect(
        lost.map(([seq, message]) => `seq ${seq}: acknowledged ${message}, served ${log[seq]}`),
        `${when}: ${sessionId} serves every acknowledged message at its seq`,
      ).toEqual([]);
      expect(new Set(log).size, `${when}: ${sessionId} has no message twice`).toBe(log.length);
      const unknown = log.filter((message) => !origins.has(message));
      expect(unknown, `${when}: ${sessionId} holds only messages writers sent`).toEqual([]);
      // Each writer's messages come in the order it created them (it sends them in that order).
      const lastByWriter = new Map<number, number>();
      const disordered: string[] = [];
      for (const [seq, message] of log.entries()) {
        const origin = origins.get(message);
        if (!origin) continue;
        const last = lastByWriter.get(origin.writer) ?? -1;
        if (origin.n <= last) {
          disordered.push(
            `seq ${seq}: writer ${origin.writer}'s message ${origin.n} after its ${last} ` +
              `(acknowledged: ${promised.get(seq) === message})`,
          );
        }
        lastByWriter.set(origin.writer, origin.n);
      }
      expect(disordered, `${when}: ${sessionId} keeps each writer's order`).toEqual([]);
      if (log.length > 0) {
        const { meta } = await unaryRpcs(client).loadMeta({ sessionId });
        expect(meta?.messageCount, `${when}: ${sessionId} meta`).toBe(log.length);
        expect(meta?.durableCount).toBeLessThanOrEqual(log.length);
      }
    }
    return logs;
  }

  /**
   * The files as a kill left them, once the journal is replayed into them (as the next start
   * does, which then replays it again: a second replay must change nothing), before any server
   * repaired them: each acknowledged message is a complete line at its place (line 1 is the
   * header, seq N is line N + 2).
   */
  async function expectFilesHoldAcknowledged(when: string) {
    const journal = join(dataDir, ".sessionstore", "journal");
    await replayJournal(dataDir, await journalSegments(journal), pino({ level: "silent" }));
    for (const sessionId of SESSIONS) {
      const promised = acknowledged.get(sessionId) as Map<number, string>;
      let text: string;
      try {
        text = await readFile(join(dataDir, `${sessionId}.jsonl`), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        expect(promised.size, `${when}: ${sessionId} has acknowledged messages but no file`).toBe(
          0,
        );
        continue;
      }
      // Everything after the last newline is a torn record the next start cuts off.
      const lines = text.slice(0, text.lastIndexOf("\n") + 1).split("\n");
      const lost = [...promised].filter(([seq, message]) => lines[seq + 1] !== message);
      expect(
        lost.map(
          ([seq, message]) => `seq ${seq}: acknowledged ${message}, file has ${lines[seq + 1]}`,
        ),
        `${when}: ${sessionId}.jsonl holds every acknowledged message`,
      ).toEqual([]);
    }
  }

  /** The files of an idle server: complete lines, a right header, readable as motosan reads them. */
  async function expectCleanFiles(logs: Map<string, string[]>, when: string) {
    for (const [sessionId, log] of logs) {
      if (log.length === 0) continue;
      const text = await readFile(join(dataDir, `${sessionId}.jsonl`), "utf8");
      expect(text.endsWith("\n"), `${when}: ${sessionId}.jsonl ends with a newline`).toBe(true);
      const [header = "", ...lines] = text.slice(0, -1).split("\n");
      expect(JSON.parse(header), `${when}: ${sessionId} header`).toMatchObject({
        session_id: sessionId,
        message_count: lines.length,
      });
      for (const line of lines) {
        expect(typeof JSON.parse(line), `${when}: ${sessionId} line ${line}`).toBe("object");
      }
      expect(lines, `${when}: ${sessionId}.jsonl lines are the served log`).toEqual(log);
      expect(readLikeMotosan(text)).toEqual(log.map((line) => JSON.parse(line)));
    }
  }

  /**
   * A reshaped session's file: its header's counts, and its lines the last of the served
   * messages (a fork's file holds only its own; a trimmed one, those from its first kept seq),
   * as motosan reads them.
   */
  async function expectReshapedFiles(reshaper: Reshaper, when: string) {
    for (const [sessionId, shape] of reshaper.shapes) {
      const text = await readFile(join(dataDir, `${sessionId}.jsonl`), "utf8");
      const [header = "", ...lines] = text.slice(0, -1).split("\n");
      const own = text === "" || text.endsWith("\n") ? lines.filter((line) => line !== "") : [];
      expect(JSON.parse(header), `${when}: ${sessionId} header`).toMatchObject({
        session_id: sessionId,
        message_count: own.length,
        first_seq: shape.firstSeq,
      });
      expect(own, `${when}: ${sessionId}.jsonl holds its last messages`).toEqual(
        shape.messages.slice(shape.messages.length - own.length),
      );
      expect(readLikeMotosan(text)).toEqual(own.map((line) => JSON.parse(line)));
    }
  }

  it(`keeps every acknowledged message across ${ROUNDS} kills (seed ${SEED})`, async () => {
    console.log(
      `crash test: seed ${SEED} (replay: SESSIONSTORE_CRASH_SEED=${SEED}), ${ROUNDS} rounds`,
    );
    const started = Date.now();
    const random = mulberry32(SEED);
    dataDir = await makeTempDir("sessionstore-crash-");
    const writers = WRITERS.map(
      ({ sessions, solo }, index) =>
        new Writer(index, sessions, solo, mulberry32(SEED + index + 1)),
    );
    const reshapers = ["shape-a", "shape.b"].map(
      (root, index) => new Reshaper(root, mulberry32(SEED + 100 + index)),
    );
    const checkReshaped = async (client: SessionStoreClient, when: string) => {
      for (const reshaper of reshapers) await reshaper.check(client, when);
    };

    for (let round = 0; round < ROUNDS; round++) {
      const syncServer = random() < 0.3;
      const running = await start(syncServer ? "sync" : "buffered");
      if (round > 0) {
        await expectServesAcknowledged(running.client, `after kill ${round}`);
        await checkReshaped(running.client, `after kill ${round}`);
      }
      const context: RoundContext = { client: running.client, syncServer, killed: false };
      const writing = Promise.all([
        ...writers.map((writer) => writer.run(context)),
        ...reshapers.map((reshaper) => reshaper.run(context)),
      ]);
      await sleep(between(random, KILL_AFTER_MS.min, KILL_AFTER_MS.max));
      context.killed = true;
      running.process.kill("SIGKILL");
      expect(await running.exited).toBe("SIGKILL");
      const writersDone = await Promise.race([
        writing.then(() => true),
        sleep(10_000).then(() => false),
      ]);
      expect(writersDone, "writers notice the killed server").toBe(true);
      running.client.close();
      stats.recoveries += running.logs.filter((entry) =>
        /recounted|torn record/.test(String(entry.msg)),
      ).length;
      // A retired segment still there: the kill came during a checkpoint.
      if ((await journalSegments(journalDirectory())).length > 1)
        journalStats.checkpointsUnderWay++;
      // Half the time the files are checked (after a replay the test makes): the other half
      // leaves the replay to the server.
      if (random() < 0.5) await expectFilesHoldAcknowledged(`kill ${round + 1}`);
      if (random() < 0.3) await tearJournalTail(random);
      if (random() < 0.4) await killWhileStarting(random);
    }

    const last = await start("buffered");
    const logs = await expectServesAcknowledged(last.client, `after kill ${ROUNDS}`);
    await checkReshaped(last.client, `after kill ${ROUNDS}`);
    stats.recoveries += last.logs.filter((entry) =>
      /recounted|torn record/.test(String(entry.msg)),
    ).length;
    // Every session file has been opened (and so repaired) by the Loads above.
    await expectCleanFiles(logs, "after the last restart");
    last.client.close();
    last.process.kill("SIGTERM");
    expect(await last.exited).toBe(0);
    await expectCleanFiles(logs, "after a graceful stop");
    for (const reshaper of reshapers) await expectReshapedFiles(reshaper, "after a graceful stop");

    console.log(
      `crash test: seed ${SEED}, ${ROUNDS} kills in ${Date.now() - started} ms; ` +
        `${stats.acks} acks (${stats.retriedAcks} of resent requests), ` +
        `${stats.aborted} ABORTED races, ${stats.partlyStored} partly stored resends, ` +
        `${stats.recoveries} file repairs logged; ` +
        `reshaping: ${JSON.stringify(reshapeStats)}; journal: ${JSON.stringify(journalStats)}; ` +
        `messages: ${[...logs].map(([id, log]) => `${id} ${log.length}`).join(", ")}`,
    );
    expect(stats.acks).toBeGreaterThan(ROUNDS);
  }, 120_000);
});
