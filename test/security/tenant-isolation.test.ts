import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStoreClient, SessionStoreError, Status } from "../../clients/ts/src/index.js";
import type { TestServer } from "../helpers/test-server.js";
import { JwksFile, jwtSettings, type SigningKey, signingKey, token } from "../helpers/tokens.js";
import { describeEachBackend } from "../integration/support.js";

/**
 * A property: random operations from several tenants, on the same session ids, through the real
 * server with token authentication. Each tenant's messages carry its name, and a model of each
 * tenant's own sessions says what it must see: its own messages only, in its own order; its own
 * sessions in List; Delete and Flush of every session touching nothing of another tenant; a
 * Watch seeing only its own. SESSIONSTORE_TENANT_RUNS changes the number of runs.
 */

const RUNS = Number(process.env.SESSIONSTORE_TENANT_RUNS ?? 25);
const TENANTS = ["acme", "globex", "initech"] as const;
const SESSIONS = ["shared", "other", "x:y.z"] as const;

type Command =
  | { type: "append"; tenant: number; session: number; count: number; sync: boolean }
  | { type: "load"; tenant: number; session: number }
  | { type: "meta"; tenant: number; session: number }
  | { type: "list"; tenant: number }
  | { type: "delete"; tenant: number; session: number }
  | { type: "flushAll"; tenant: number }
  | { type: "watch"; tenant: number; session: number }
  | { type: "fork"; tenant: number; session: number; into: number }
  | { type: "popLast"; tenant: number; session: number }
  | { type: "labelled"; tenant: number; session: number };

const tenantArb = fc.integer({ min: 0, max: TENANTS.length - 1 });
const sessionArb = fc.integer({ min: 0, max: SESSIONS.length - 1 });
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant("append" as const),
      tenant: tenantArb,
      session: sessionArb,
      count: fc.integer({ min: 1, max: 3 }),
      sync: fc.boolean(),
    }),
  },
  ...(["load", "meta", "delete", "watch"] as const).map((type) => ({
    weight: type === "delete" ? 1 : 2,
    arbitrary: fc.record({ type: fc.constant(type), tenant: tenantArb, session: sessionArb }),
  })),
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("fork" as const),
      tenant: tenantArb,
      session: sessionArb,
      into: sessionArb,
    }),
  },
  ...(["popLast", "labelled"] as const).map((type) => ({
    weight: 1,
    arbitrary: fc.record({ type: fc.constant(type), tenant: tenantArb, session: sessionArb }),
  })),
  ...(["list", "flushAll"] as const).map((type) => ({
    weight: 1,
    arbitrary: fc.record({ type: fc.constant(type), tenant: tenantArb }),
  })),
);

interface Message {
  tenant: string;
  n: number;
}

describeEachBackend(
  "tenant isolation",
  (start) => {
    let key: SigningKey;
    let jwks: JwksFile;
    let server: TestServer;
    let clients: SessionStoreClient[];
    let counter = 0;

    beforeAll(async () => {
      key = await signingKey();
      jwks = await JwksFile.create([key]);
    });

    afterAll(() => {
      for (const client of clients ?? []) client.close();
    });

    it("no tenant ever observes another's sessions, under random operations from all of them", async () => {
      server = await start({
        ...jwtSettings(jwks),
        flushMessages: 1000,
        flushIntervalMs: 600_000,
      });
      clients = await Promise.all(
        TENANTS.map(
          async (tenant) =>
            new SessionStoreClient(server.server.address, {
              token: await token(key, {
                tenant,
                scope: "sessions:read sessions:write sessions:delete",
              }),
              retry: { maxAttempts: 1 },
            }),
        ),
      );
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(commandArb, { minLength: 1, maxLength: 30 }),
          async (commands) => {
            // Each run has sessions of its own, by a prefix: the server is shared by the runs.
            const prefix = `run${run++}-`;
            const models = TENANTS.map(() => new Map<string, Message[]>());
            const labelled = TENANTS.map(() => new Set<string>());
            const id = (session: number) => `${prefix}${SESSIONS[session]}`;
            for (const command of commands) {
              const client = clients[command.tenant] as SessionStoreClient;
              const tenant = TENANTS[command.tenant] as string;
              const model = models[command.tenant] as Map<string, Message[]>;
              const expected = (session: number) => model.get(id(session)) ?? [];
              switch (command.type) {
                case "append": {
                  const messages = Array.from({ length: command.count }, () => ({
                    tenant,
                    n: counter++,
                  }));
                  const result = await client.append(id(command.session), messages, {
                    sync: command.sync,
                  });
                  expect(result.firstSeq).toBe(expected(command.session).length);
                  model.set(id(command.session), [...expected(command.session), ...messages]);
                  break;
                }
                case "load": {
                  const loaded = [];
                  for await (const { message } of client.load(id(command.session))) {
                    loaded.push(message);
                  }
                  expect(loaded).toEqual(expected(command.session));
                  break;
                }
                case "meta": {
                  const meta = await client.meta(id(command.session));
                  expect(meta?.messageCount).toBe(
                    model.has(id(command.session)) ? expected(command.session).length : undefined,
                  );
                  break;
                }
                case "list": {
                  const listed = [];
                  for await (const meta of client.list({ prefix })) listed.push(meta.sessionId);
                  expect(listed).toEqual([...model.keys()].sort());
                  break;
                }
                case "delete": {
                  const existed = await client.delete(id(command.session));
                  expect(existed).toBe(model.has(id(command.session)));
                  model.delete(id(command.session));
                  labelled[command.tenant]?.delete(id(command.session));
                  break;
                }
                case "flushAll": {
                  // Flushing every session of one tenant leaves the others' durable counts alone.
                  const others = clients.filter((_, index) => index !== command.tenant);
                  const before = await durableCounts(
                    others,
                    SESSIONS.map((_, s) => id(s)),
                  );
                  const report = await client.flushAll();
                  expect(report.failures).toEqual([]);
                  expect(
                    await durableCounts(
                      others,
                      SESSIONS.map((_, s) => id(s)),
                    ),
                  ).toEqual(before);
                  break;
                }
                case "fork": {
                  // A fork only ever sees, and makes, sessions of its own tenant.
                  const source = id(command.session);
                  const into = id(command.into);
                  const forking = client.fork(source, expected(command.session).length, into);
                  if (!model.has(source) || model.has(into)) {
                    const error = await forking.then(
                      () => undefined,
                      (reason: unknown) => reason,
                    );
                    expect((error as SessionStoreError).code).toBe(
                      model.has(source) ? Status.ALREADY_EXISTS : Status.NOT_FOUND,
                    );
                    break;
                  }
                  await forking;
                  model.set(into, [...expected(command.session)]);
                  // The fork has its source's labels.
                  if (labelled[command.tenant]?.has(source)) labelled[command.tenant]?.add(into);
                  break;
                }
                case "popLast": {
                  const length = expected(command.session).length;
                  if (length === 0) break;
                  const { dropped } = await client.rewind(id(command.session), length - 1);
                  expect(dropped.map(({ message }) => message)).toEqual(
                    expected(command.session).slice(-1),
                  );
                  model.set(id(command.session), expected(command.session).slice(0, -1));
                  break;
                }
                case "labelled": {
                  // Labels name the tenant; a selector of it lists only this tenant's sessions.
                  if (model.has(id(command.session))) {
                    await client.setLabels(id(command.session), { owner: tenant });
                    labelled[command.tenant]?.add(id(command.session));
                  }
                  const listed = [];
                  for await (const meta of client.list({ labelSelector: "owner", prefix })) {
                    listed.push(meta.sessionId);
                  }
                  expect(listed).toEqual(
                    [...(labelled[command.tenant] ?? [])].filter((s) => model.has(s)).sort(),
                  );
                  break;
                }
                case "watch": {
                  const want = expected(command.session);
                  const seen = await watchFor(client, id(command.session), want.length);
                  expect(seen).toEqual(want);
                  break;
                }
              }
            }
            // Everything each tenant holds, in the end, is its own and what its model says.
            for (const [index, client] of clients.entries()) {
              for (const session of SESSIONS.keys()) {
                const loaded: Message[] = [];
                for await (const { message } of client.load<Message>(id(session)))
                  loaded.push(message);
                expect(loaded.every((message) => message.tenant === TENANTS[index])).toBe(true);
                expect(loaded).toEqual(models[index]?.get(id(session)) ?? []);
              }
            }
          },
        ),
        { numRuns: RUNS },
      );
    }, 180_000);
  },
  { backends: ["jsonl", "postgres"] },
);

async function durableCounts(clients: SessionStoreClient[], ids: string[]): Promise<number[]> {
  const counts: number[] = [];
  for (const client of clients) {
    for (const id of ids) counts.push((await client.meta(id))?.durableCount ?? -1);
  }
  return counts;
}

/**
 * What a Watch of `sessionId` delivers until it has `count` messages, plus anything that comes
 * within 100 ms after (which would be someone else's): the session as the caller sees it.
 */
async function watchFor(
  client: SessionStoreClient,
  sessionId: string,
  count: number,
): Promise<unknown[]> {
  const seen: unknown[] = [];
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const settle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stop.abort(), 100);
  };
  settle();
  try {
    for await (const { message } of client.watch(sessionId, { signal: stop.signal })) {
      seen.push(message);
      if (seen.length >= count) settle();
    }
  } catch (error) {
    if (!(error instanceof SessionStoreError && error.code === Status.CANCELLED)) throw error;
  } finally {
    clearTimeout(timer);
  }
  return seen;
}
