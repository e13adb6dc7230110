// An example agent using @sessionstore/client: it records a short conversation in a new session
// while an observer watches it live, then reads the session back the ways an agent resuming after
// a restart would. Start a server (`npm start`), then run `npm run example` from the repository
// root, or `node agent.mjs [host:port]` where the package is installed. SESSIONSTORE_ADDRESS also
// names the server; the default is 127.0.0.1:50051. Pass --keep to keep the session afterwards.
import { SessionStoreClient, SessionStoreError, Status } from "@sessionstore/client";

const args = process.argv.slice(2);
const address =
  args.find((arg) => !arg.startsWith("--")) ??
  process.env.SESSIONSTORE_ADDRESS ??
  "127.0.0.1:50051";
const client = new SessionStoreClient(address);
const sessionId = `example-agent-${Date.now()}`;
const watcher = new AbortController();

/** The conversation the agent records: messages in the agent's own JSON format. */
const conversation = [
  { role: "system", content: "You are a helpful assistant with a calculator tool." },
  { role: "user", content: "What is 12345678901 * 1000003?" },
  { role: "assistant", tool_calls: [{ id: "c1", name: "multiply", args: [12345678901, 1000003] }] },
  // JSON text is stored exactly as written: this integer is past 2^53.
  '{"role":"tool","tool_call_id":"c1","result":12345715938036703}',
  { role: "assistant", content: "12345678901 × 1000003 = 12,345,715,938,036,703." },
];

try {
  // Fails after about 3 s with UNAVAILABLE when no server answers.
  await client.meta(sessionId, { timeoutMs: 3000 });
  console.log(`session ${sessionId} on ${address}`);

  // An observer, such as a UI, follows the session as it grows.
  const observed = (async () => {
    let seen = 0;
    for await (const { seq, message } of client.watch(sessionId, { signal: watcher.signal })) {
      console.log(`  watch: seq ${seq} ${message.role}`);
      if (++seen === conversation.length) return seen;
    }
  })();

  // The agent streams its messages through one appender: each write resolves once stored, and a
  // dropped connection or a server restart is survived without losing or repeating a message.
  const appender = client.appender(sessionId);
  const acks = [];
  for (const message of conversation) {
    await appender.ready(); // backpressure: waits while too much is unacknowledged
    acks.push(appender.write(message));
  }
  for (const ack of await Promise.all(acks)) console.log(`appended seq ${ack.seq}`);
  await appender.close();
  console.log(`watcher saw ${await observed} messages`);

  // Resuming later: the whole history, or only the last messages.
  const history = [];
  for await (const { message } of client.load(sessionId)) history.push(message);
  console.log(`loaded ${history.length} messages; the first says: ${history[0].content}`);
  for await (const { seq, message } of client.load(sessionId, {
    limit: 2,
    last: true,
    raw: true,
  })) {
    console.log(`last two, raw: seq ${seq} ${message}`);
  }

  // Optimistic concurrency: a writer that expected another length is refused, and told the length.
  try {
    await client.append(sessionId, { role: "user", content: "late" }, { expectedSeq: 2 });
  } catch (error) {
    if (!(error instanceof SessionStoreError) || error.code !== Status.ABORTED) throw error;
    console.log(`expectedSeq 2 refused: ${error.codeName}, the session has ${error.actualLength}`);
  }

  await client.flush(sessionId);
  const meta = await client.meta(sessionId);
  console.log(`meta: ${meta?.messageCount} messages, ${meta?.durableCount} durable`);
  let listed = 0;
  for await (const _ of client.list({ prefix: "example-agent-" })) listed++;
  console.log(`example sessions on the server: ${listed}`);

  if (args.includes("--keep")) console.log(`kept ${sessionId}`);
  else console.log(`deleted: ${await client.delete(sessionId)}`);
} catch (error) {
  if (error instanceof SessionStoreError && error.code === Status.UNAVAILABLE) {
    console.error(`no sessionstore server answers at ${address}: start one with \`npm start\``);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
} finally {
  watcher.abort();
  client.close();
}
