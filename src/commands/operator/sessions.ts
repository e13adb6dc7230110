import { createInterface } from "node:readline/promises";
import type { SessionMeta } from "../../../gen/sessionstore/v1/session_store.js";
import { dialectOfLabels } from "../../sessions/dialects.js";
import { type Connection, EXIT, UsageError } from "./connection.js";
import { formatLabels, type Output, relativeTime, renderTable } from "./output.js";
import { renderMessage } from "./render.js";

/** What a command is given: where it writes, and the server (connected on first use). */
export interface Context {
  output: Output;
  connection(): Connection;
}

/** A session's figures as --json prints them (what SessionMeta says, in the proto's JSON names). */
export function metaJson(meta: SessionMeta) {
  return {
    sessionId: meta.sessionId,
    messageCount: meta.messageCount,
    durableCount: meta.durableCount,
    firstSeq: meta.firstSeq,
    createdAtMs: meta.createdAtMs,
    updatedAtMs: meta.updatedAtMs,
    agentLoopVersion: meta.agentLoopVersion,
    labels: meta.labels,
    labelsRevision: meta.labelsRevision,
    ...(meta.parentSessionId
      ? { parentSessionId: meta.parentSessionId, parentSeq: meta.parentSeq }
      : {}),
  };
}

export async function ls(
  context: Context,
  options: { prefix?: string; selector?: string; recent?: boolean },
): Promise<number> {
  const { output } = context;
  const sessions: SessionMeta[] = [];
  for await (const meta of context.connection().list({
    prefix: options.prefix,
    labelSelector: options.selector,
    recent: options.recent,
  })) {
    sessions.push(meta);
  }
  if (output.json) {
    output.printJson(sessions.map(metaJson));
    return EXIT.ok;
  }
  const now = Date.now();
  output.out(
    renderTable(
      output,
      ["ID", "MESSAGES", "DURABLE", "CREATED", "UPDATED", "LABELS"],
      sessions.map((meta) => [
        meta.sessionId,
        String(meta.messageCount),
        String(meta.durableCount),
        relativeTime(meta.createdAtMs, now),
        relativeTime(meta.updatedAtMs, now),
        formatLabels(meta.labels),
      ]),
    ),
  );
  if (output.tty) output.err(output.color.dim(`${sessions.length} sessions\n`));
  return EXIT.ok;
}

/** Prints messages as the output asks: pretty on a terminal, raw JSONL piped, JSON lines. */
export function messagePrinter(output: Output, raw: boolean, labels: Record<string, string>) {
  const dialect = dialectOfLabels(labels);
  return (seq: number, text: string) => {
    // The stored text goes out as it is: JSON lines embed it, so big integers stay exact.
    if (output.json) output.out(`{"seq":${seq},"message":${text}}\n`);
    else if (raw || !output.tty) output.out(`${text}\n`);
    else output.out(renderMessage(seq, text, output.color, dialect));
  };
}

export async function cat(
  context: Context,
  sessionId: string,
  options: { from?: number; last?: number; raw?: boolean },
): Promise<number> {
  const connection = context.connection();
  // LoadMeta first: an unknown session is NOT_FOUND (Load streams nothing), and its labels
  // may fix the dialect the messages are shown in.
  const meta = await connection.meta(sessionId);
  const print = messagePrinter(context.output, options.raw === true, meta.labels);
  for await (const { seq, text } of connection.load(sessionId, {
    fromSeq: options.from ?? 0,
    limit: options.last ?? 0,
    last: options.last !== undefined,
  })) {
    print(seq, text);
  }
  return EXIT.ok;
}

/** A session's meta: a two-column table, or JSON. */
export function printMeta(output: Output, meta: SessionMeta): void {
  if (output.json) {
    output.printJson(metaJson(meta));
    return;
  }
  const rows = Object.entries(metaJson(meta)).map(([key, value]) => {
    if (key === "labels") return [key, formatLabels(value as Record<string, string>)];
    if (key.endsWith("AtMs")) {
      const ms = value as number;
      return [key, ms === 0 ? "-" : `${new Date(ms).toISOString()} (${relativeTime(ms)})`];
    }
    return [key, String(value)];
  });
  output.out(renderTable(output, ["FIELD", "VALUE"], rows));
}

export async function meta(context: Context, sessionId: string): Promise<number> {
  printMeta(context.output, await context.connection().meta(sessionId));
  return EXIT.ok;
}

/** Asks a yes/no question on the terminal (stderr); false unless the answer is yes. */
export async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(`${question} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}

export async function rm(
  context: Context,
  sessionIds: string[],
  options: { yes?: boolean },
): Promise<number> {
  const { output } = context;
  if (!options.yes) {
    if (!output.interactive) {
      throw new UsageError("rm deletes sessions for good: pass --yes when not on a terminal");
    }
    const what = sessionIds.length === 1 ? sessionIds[0] : `${sessionIds.length} sessions`;
    if (!(await confirm(`delete ${what} for good?`))) {
      output.err("nothing deleted\n");
      return EXIT.failure;
    }
  }
  const connection = context.connection();
  const results: { sessionId: string; existed: boolean }[] = [];
  for (const sessionId of sessionIds) {
    const { existed } = await connection.unary(connection.client.delete, { sessionId }, sessionId);
    results.push({ sessionId, existed });
    if (!output.json) {
      output.out(existed ? `deleted ${sessionId}\n` : `${sessionId} did not exist\n`);
    }
  }
  if (output.json) output.printJson(results);
  return results.every((r) => r.existed) ? EXIT.ok : EXIT.notFound;
}

/** `k=v` arguments as a label map (`k=` removes k). */
export function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0)
      throw new UsageError(`a label is key=value (key= removes it), not ${JSON.stringify(pair)}`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

export async function fork(
  context: Context,
  sessionId: string,
  atSeq: number,
  newSessionId: string,
  options: { label?: string[] },
): Promise<number> {
  const connection = context.connection();
  const { meta } = await connection.unary(
    connection.client.fork,
    { sessionId, atSeq, newSessionId, labels: parseLabels(options.label ?? []) },
    sessionId,
  );
  printMeta(context.output, meta as SessionMeta);
  return EXIT.ok;
}

export async function rewind(
  context: Context,
  sessionId: string,
  toSeq: number,
  options: { expectedSeq?: number },
): Promise<number> {
  const connection = context.connection();
  const response = await connection.unary(
    connection.client.rewind,
    { sessionId, toSeq, expectedSeq: options.expectedSeq },
    sessionId,
  );
  const meta = response.meta as SessionMeta;
  const { output } = context;
  if (output.json) {
    output.printJson({ dropped: response.droppedMessages.length, meta: metaJson(meta) });
  } else {
    output.out(
      `rewound ${sessionId} to seq ${toSeq}: dropped ${response.droppedMessages.length} messages; it holds ${meta.messageCount}\n`,
    );
  }
  return EXIT.ok;
}

export async function trim(
  context: Context,
  sessionId: string,
  beforeSeq: number,
): Promise<number> {
  const connection = context.connection();
  const response = await connection.unary(
    connection.client.trim,
    { sessionId, beforeSeq },
    sessionId,
  );
  const meta = response.meta as SessionMeta;
  const { output } = context;
  if (output.json) output.printJson({ trimmed: response.trimmed, meta: metaJson(meta) });
  else {
    output.out(
      `trimmed ${response.trimmed} messages of ${sessionId}: it starts at seq ${meta.firstSeq} now\n`,
    );
  }
  return EXIT.ok;
}

export async function label(
  context: Context,
  sessionId: string,
  pairs: string[],
  options: { expectedRevision?: number },
): Promise<number> {
  const connection = context.connection();
  if (pairs.length === 0) {
    // No change: shows the labels.
    const meta = await connection.meta(sessionId);
    printLabels(context.output, meta);
    return EXIT.ok;
  }
  const { meta } = await connection.unary(
    connection.client.setLabels,
    {
      sessionId,
      labels: parseLabels(pairs),
      expectedLabelsRevision: options.expectedRevision,
    },
    sessionId,
  );
  printLabels(context.output, meta as SessionMeta);
  return EXIT.ok;
}

function printLabels(output: Output, meta: SessionMeta): void {
  if (output.json) {
    output.printJson({ labels: meta.labels, labelsRevision: meta.labelsRevision });
    return;
  }
  const keys = Object.keys(meta.labels).sort();
  output.out(
    renderTable(
      output,
      ["LABEL", "VALUE"],
      keys.map((key) => [key, meta.labels[key] as string]),
    ),
  );
}
