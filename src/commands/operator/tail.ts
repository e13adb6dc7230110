import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { EXIT, isServiceError, streamOf } from "./connection.js";
import { type Context, messagePrinter } from "./sessions.js";

/** Failures after which a watch is opened again (the server restarting, a network blip). */
const TRANSIENT = new Set([
  status.UNAVAILABLE,
  status.CANCELLED,
  status.UNKNOWN,
  status.INTERNAL,
  status.ABORTED,
  status.RESOURCE_EXHAUSTED,
  status.DEADLINE_EXCEEDED,
]);

const MAX_BACKOFF_MS = 5000;

/**
 * `tail ID`: the last messages; with `follow`, then every new one as it is appended (Watch),
 * until interrupted. A dropped stream (the server restarting) is opened again from the next
 * seq, so nothing is shown twice or skipped; a rewind is said on stderr and followed.
 */
export async function tail(
  context: Context,
  sessionId: string,
  options: { follow?: boolean; from?: number; lines: number; raw?: boolean },
): Promise<number> {
  const { output } = context;
  const connection = context.connection();
  const meta = await connection.meta(sessionId);
  const print = messagePrinter(output, options.raw === true, meta.labels);
  let next = options.from ?? Math.max(meta.firstSeq, meta.messageCount - options.lines);
  if (!options.follow) {
    for await (const { seq, text } of connection.load(sessionId, {
      fromSeq: next,
      limit: 0,
      last: false,
    })) {
      print(seq, text);
    }
    return EXIT.ok;
  }
  const note = (text: string) => output.err(`${output.color.dim(text)}\n`);
  for (let failures = 0; ; failures++) {
    try {
      for await (const page of streamOf(connection.watch({ sessionId, fromSeq: next }))) {
        if (failures > 0) note(`reconnected; following ${sessionId} from seq ${next}`);
        failures = 0;
        if (page.rewoundTo !== undefined) {
          note(`${sessionId} was rewound to seq ${page.rewoundTo}`);
          next = page.rewoundTo;
          continue;
        }
        for (const [i, text] of page.messages.entries()) print(page.firstSeq + i, text);
        next = page.firstSeq + page.messages.length;
      }
    } catch (error) {
      if (!isServiceError(error) || !TRANSIENT.has(error.code)) throw error;
      if (failures === 0)
        note(`lost the server (${status[error.code]}); reconnecting from seq ${next}`);
    }
    await sleep(Math.min(200 * 2 ** Math.min(failures, 5), MAX_BACKOFF_MS));
  }
}
