import { status } from "@grpc/grpc-js";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { packageVersion } from "../../version.js";
import { exportSessions, importSessions } from "./archive.js";
import { bashCompletion, zshCompletion } from "./completion.js";
import {
  Connection,
  type ConnectionOptions,
  EXIT,
  exitCodeOf,
  isServiceError,
  UsageError,
} from "./connection.js";
import { doctor, repair } from "./doctor.js";
import { outputFor } from "./output.js";
import type { Context } from "./sessions.js";
import * as sessions from "./sessions.js";
import { stats } from "./stats.js";
import { tail } from "./tail.js";

/** The global options, as commander gives them. */
interface GlobalOptions extends ConnectionOptions {
  json?: boolean;
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a whole number (0 or more)");
  return Number(value);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Examples at the end of a command's --help. */
function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`;
}

const EXIT_CODES = `
Exit codes: 0 ok, 1 failure, 2 usage (or an argument the server refused), 3 not found,
4 conflict (ABORTED, ALREADY_EXISTS: an expected seq or revision did not match, a name taken),
5 server unavailable, 6 unauthenticated or not allowed.
`;

/**
 * The operator's commands (`sessionstore ls`, `cat`, ...), parsed by commander. `serve`, `copy`
 * and `migrate` are listed for --help but run by src/cli.ts as before.
 */
export function buildProgram(): Command {
  const program = new Command("sessionstore")
    .description(
      "A gRPC service that keeps AI agents' conversation history, and the commands to operate it.",
    )
    .version(packageVersion(), "--version")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .addOption(
      new Option("--address <host:port>", "the server's address")
        .env("SESSIONSTORE_ADDRESS")
        .default("127.0.0.1:50051"),
    )
    .addOption(new Option("--tls-ca <file>", "PEM CA to trust (TLS: the default off loopback)"))
    .addOption(new Option("--tls-cert <file>", "PEM client certificate (with --tls-key)"))
    .addOption(new Option("--tls-key <file>", "PEM key of --tls-cert"))
    .addOption(new Option("--insecure", "plaintext even to an address off this machine"))
    .addOption(
      new Option("--token <jwt>", "bearer token for a server with --auth jwt (never printed)").env(
        "SESSIONSTORE_TOKEN",
      ),
    )
    .addOption(new Option("--json", "output JSON for scripts"))
    .addHelpText(
      "after",
      `${examples(
        "sessionstore serve --data-dir ./data",
        "sessionstore ls --selector user=alice --recent",
        "sessionstore cat chat-42 --last 5",
        "SESSIONSTORE_ADDRESS=db1:50051 sessionstore --tls-ca ca.pem tail -f chat-42",
      )}${EXIT_CODES}`,
    );

  // Run by src/cli.ts; here so that --help lists them.
  program.command("serve").description("run the server (sessionstore serve --help)");
  program.command("copy").description("copy every session between data directories and databases");
  program.command("migrate").description("bring a PostgreSQL schema up to date");

  const action =
    <A extends unknown[]>(run: (context: Context, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      process.exitCode = await runAction(command, (context) => run(context, ...(args as A)));
    };

  program
    .command("ls")
    .description("list sessions: id, messages, durable, created, updated, labels (all pages)")
    .option("--prefix <p>", "only ids starting with p")
    .option("--selector <labels>", "a label selector: user=alice,env!=prod,!archived")
    .option("--recent", "most recently appended first (default: by id)")
    .addHelpText(
      "after",
      examples(
        "sessionstore ls",
        "sessionstore ls --prefix chat- --recent",
        "sessionstore ls --selector user=alice --json | jq '.[].sessionId'",
      ),
    )
    .action(
      action((c, options: { prefix?: string; selector?: string; recent?: boolean }) =>
        sessions.ls(c, options),
      ),
    );

  program
    .command("cat")
    .description("print a session's messages: by role on a terminal, raw JSONL when piped")
    .argument("<id>", "session id")
    .option("--from <seq>", "from this seq", integer)
    .option("--last <n>", "only the last n messages", integer)
    .option("--raw", "raw JSONL (as stored) even on a terminal")
    .addHelpText(
      "after",
      examples(
        "sessionstore cat chat-42",
        "sessionstore cat chat-42 --last 10 --raw",
        "sessionstore cat chat-42 --from 100 > chat-42.jsonl",
      ),
    )
    .action(
      action((c, id: string, options: { from?: number; last?: number; raw?: boolean }) =>
        sessions.cat(c, id, options),
      ),
    );

  program
    .command("meta")
    .description("a session's meta: counts, times, labels, lineage")
    .argument("<id>", "session id")
    .addHelpText("after", examples("sessionstore meta chat-42", "sessionstore meta chat-42 --json"))
    .action(action((c, id: string) => sessions.meta(c, id)));

  program
    .command("rm")
    .description("delete sessions (asks on a terminal; needs --yes otherwise)")
    .argument("<id...>", "session ids")
    .option("-y, --yes", "do not ask")
    .addHelpText(
      "after",
      examples("sessionstore rm chat-42", "sessionstore rm --yes chat-1 chat-2"),
    )
    .action(action((c, ids: string[], options: { yes?: boolean }) => sessions.rm(c, ids, options)));

  program
    .command("fork")
    .description("fork a session at a seq: the new one holds its messages before it")
    .argument("<id>", "source session id")
    .argument("<at-seq>", "the fork holds the source's messages before this seq", integer)
    .argument("<new-id>", "the fork's id (must not exist)")
    .option("--label <k=v>", "a label of the fork (repeatable; k= removes one)", collect)
    .addHelpText(
      "after",
      examples("sessionstore fork chat-42 10 chat-42-retry --label branch=retry"),
    )
    .action(
      action((c, id: string, at: number, newId: string, options: { label?: string[] }) =>
        sessions.fork(c, id, at, newId, options),
      ),
    );

  program
    .command("rewind")
    .description("drop a session's messages from a seq on (undo)")
    .argument("<id>", "session id")
    .argument("<to-seq>", "the session's length afterwards", integer)
    .option("--expected-seq <n>", "only if the session holds n messages now", integer)
    .addHelpText(
      "after",
      examples("sessionstore rewind chat-42 8", "sessionstore rewind chat-42 8 --expected-seq 10"),
    )
    .action(
      action((c, id: string, to: number, options: { expectedSeq?: number }) =>
        sessions.rewind(c, id, to, options),
      ),
    );

  program
    .command("trim")
    .description("drop a session's messages before a seq (retention); seqs stay")
    .argument("<id>", "session id")
    .argument("<before-seq>", "the first seq kept", integer)
    .addHelpText("after", examples("sessionstore trim chat-42 100"))
    .action(action((c, id: string, before: number) => sessions.trim(c, id, before)));

  program
    .command("label")
    .description("show or change a session's labels (k=v sets, k= removes)")
    .argument("<id>", "session id")
    .argument("[k=v...]", "labels to set or remove")
    .option("--expected-revision <n>", "only if the labels' revision is n", integer)
    .addHelpText(
      "after",
      examples(
        "sessionstore label chat-42",
        "sessionstore label chat-42 user=alice env=",
        "sessionstore label chat-42 tier=gold --expected-revision 3",
      ),
    )
    .action(
      action((c, id: string, pairs: string[], options: { expectedRevision?: number }) =>
        sessions.label(c, id, pairs, options),
      ),
    );

  program
    .command("tail")
    .description("the last messages of a session; with -f, then each new one as it comes (Watch)")
    .argument("<id>", "session id")
    .option("-f, --follow", "follow: wait for new messages (reconnects, resuming at the next seq)")
    .option("-n, --lines <n>", "how many of the last messages to show first", integer, 10)
    .option("--from <seq>", "start at this seq instead", integer)
    .option("--raw", "raw JSONL (as stored) even on a terminal")
    .addHelpText(
      "after",
      examples(
        "sessionstore tail -f chat-42",
        "sessionstore tail -f chat-42 --from 0 | jq .role",
        "sessionstore tail -n 3 chat-42",
      ),
    )
    .action(
      action(
        (
          c,
          id: string,
          options: { follow?: boolean; from?: number; lines: number; raw?: boolean },
        ) => tail(c, id, options),
      ),
    );

  program
    .command("export")
    .description("write sessions to a directory of motosan files, or one .jsonl.gz archive")
    .argument("<out>", "a directory, or a file named *.jsonl.gz")
    .option("--prefix <p>", "only ids starting with p")
    .addHelpText(
      "after",
      `${examples("sessionstore export ./backup", "sessionstore export --prefix chat- chats.jsonl.gz")}
Run it again after an interruption: it resumes. Messages are written byte for byte as stored;
a session already in the directory is not written again. Progress on a terminal; a summary.
`,
    )
    .action(
      action((c, out: string, options: { prefix?: string }) => exportSessions(c, out, options)),
    );

  program
    .command("import")
    .description("append the sessions of a motosan directory or .jsonl.gz archive to the server")
    .argument("<in>", "a directory of <id>.jsonl files, or a file named *.jsonl.gz")
    .addHelpText(
      "after",
      `${examples("sessionstore import ./backup", "sessionstore --address db2:50051 import chats.jsonl.gz")}
Each session is appended at seq 0 with expected_seq: messages the server holds already, byte for
byte, are recognised (run it again after an interruption: it resumes); a session the server holds
other messages of is left as it is and reported (exit 4). Creation times become the import's.
`,
    )
    .action(action((c, from: string) => importSessions(c, from)));

  program
    .command("stats")
    .description(
      "the server's figures: sessions, messages, durable; buffered bytes, watchers (--metrics)",
    )
    .addOption(
      new Option("--metrics <host:port>", "the server's --metrics-listen address (or URL)").env(
        "SESSIONSTORE_METRICS",
      ),
    )
    .option("--prefix <p>", "count only sessions whose ids start with p")
    .addHelpText(
      "after",
      examples("sessionstore stats", "sessionstore stats --metrics 127.0.0.1:9464 --json"),
    )
    .action(action((c, options: { metrics?: string; prefix?: string }) => stats(c, options)));

  program
    .command("doctor")
    .description(
      "offline: check every session file of a data directory (header, records, torn tails, strays)",
    )
    .requiredOption("--data-dir <dir>", "the data directory (read only; a server may run on it)")
    .addHelpText(
      "after",
      `${examples("sessionstore doctor --data-dir ./data", "sessionstore doctor --data-dir ./data --json | jq .problems")}
Exit 0 when no problem was found, 1 when some were.
`,
    )
    .action(action((c, options: { dataDir: string }) => doctor(c, options)));

  program
    .command("repair")
    .description(
      "offline: cut a torn tail or quarantine corrupt records of a session file, keeping a backup",
    )
    .argument("<id>", "session id")
    .requiredOption("--data-dir <dir>", "the data directory (no server may run on it)")
    .option("--tenant <name>", "the session is a tenant's (under <data-dir>/tenants/<name>)")
    .option("--dry-run", "say what it would do, change nothing")
    .option("-y, --yes", "do not ask")
    .addHelpText(
      "after",
      examples(
        "sessionstore repair --data-dir ./data chat-42",
        "sessionstore repair --data-dir ./data chat-42 --dry-run --json",
      ),
    )
    .action(
      action(
        (
          c,
          id: string,
          options: { dataDir: string; tenant?: string; yes?: boolean; dryRun?: boolean },
        ) => repair(c, id, options),
      ),
    );

  program
    .command("completion")
    .description("print a shell completion script (bash or zsh)")
    .argument("<shell>", "bash or zsh")
    .addHelpText(
      "after",
      examples(
        "sessionstore completion bash > /etc/bash_completion.d/sessionstore",
        'eval "$(sessionstore completion bash)"',
        "sessionstore completion zsh > ~/.zfunc/_sessionstore  # a directory in $fpath",
      ),
    )
    .action(
      action(async (c, shell: string) => {
        if (shell !== "bash" && shell !== "zsh")
          throw new UsageError(`completion is for bash or zsh, not ${JSON.stringify(shell)}`);
        c.output.out(shell === "bash" ? bashCompletion(program) : zshCompletion(program));
        return EXIT.ok;
      }),
    );

  return program;
}

/** Runs one command's action: its exit code, with failures said in one line on stderr. */
async function runAction(
  command: Command,
  run: (context: Context) => Promise<number>,
): Promise<number> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const output = outputFor(globals.json === true);
  let connection: Connection | undefined;
  const context: Context = {
    output,
    connection: () => {
      connection ??= new Connection(globals);
      return connection;
    },
  };
  try {
    return await run(context);
  } catch (error) {
    return reportFailure(command.name(), error, globals.address);
  } finally {
    connection?.close();
  }
}

function reportFailure(name: string, error: unknown, address: string): number {
  const say = (message: string) => process.stderr.write(`sessionstore ${name}: ${message}\n`);
  if (isServiceError(error)) {
    const code = status[error.code] ?? String(error.code);
    if (error.code === status.UNAVAILABLE) {
      say(
        `cannot reach the server at ${address} (${error.details}); is it running? (--address, SESSIONSTORE_ADDRESS)`,
      );
    } else say(`${error.details || error.message} (${code})`);
    return exitCodeOf(error);
  }
  if (error instanceof UsageError) {
    say(error.message);
    return EXIT.usage;
  }
  say(error instanceof Error ? error.message : String(error));
  return EXIT.failure;
}

/** `sessionstore <command>` for the operator's commands: resolves to the exit code. */
export async function runOperatorCommand(args: string[]): Promise<number> {
  endQuietlyWhenThePipeCloses();
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw error;
  }
}

/**
 * `sessionstore ls | head` closes the pipe while we still write: stop then, as Unix tools do,
 * rather than crash with an unhandled EPIPE.
 */
function endQuietlyWhenThePipeCloses(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(EXIT.ok);
  });
}
