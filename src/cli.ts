#!/usr/bin/env node
import { ConfigError, loadConfig, usage } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { logGrpcJsTo } from "./server/grpc-js-logs.js";
import { startService } from "./service.js";
import { onShutdownSignals } from "./shutdown-signals.js";
import type { Tracing } from "./tracing/tracing.js";
import { tracingRequested } from "./tracing/tracing-settings.js";
import { packageVersion } from "./version.js";

async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === "serve" && rest.includes("--help")) {
    process.stdout.write(usage());
    return;
  }
  if (command === "--version" || rest.includes("--version")) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  if (command === "copy" || command === "migrate") {
    // Loaded only for these commands: the server starts without what they need.
    const { copyCommand, migrateCommand } = await import("./commands/data-commands.js");
    process.exitCode = await (command === "copy" ? copyCommand(rest) : migrateCommand(rest));
    return;
  }
  if (command !== "serve") {
    // The operator's commands (ls, cat, tail, export, doctor, ...), and --help for them all:
    // loaded only for them, as copy's are.
    const { runOperatorCommand } = await import("./commands/operator/program.js");
    process.exitCode = await runOperatorCommand(args);
    return;
  }
  const config = loadConfig(rest, process.env);
  const tracing = tracingRequested(process.env) ? await startTracing() : undefined;
  const log = createLogger(config.logLevel, 1, tracing?.logFields);
  logGrpcJsTo(log);
  tracing?.logTo(log);
  const server = await startService(config, log, { tracer: tracing?.tracer });
  // The process that binds the port handles the signals: shut down once, exit 0 when done.
  onShutdownSignals({
    shutdown(signal) {
      log.info({ signal }, "shutting down");
      server
        .shutdown()
        .then(() => tracing?.shutdown())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            log.fatal({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
    },
    repeated: (signal) => log.info({ signal }, "already shutting down"),
  });
}

/**
 * OpenTelemetry as the OTEL_* variables configure it, loaded only when they ask for traces: a
 * server without them starts without it. Log lines then carry the current trace id.
 */
async function startTracing(): Promise<
  Tracing & { logFields: () => object; logTo: (log: Logger) => void }
> {
  const [{ startOtlpTracing, logOpenTelemetryTo }, { traceIdsOfCurrentSpan }] = await Promise.all([
    import("./tracing/tracing.js"),
    import("./tracing/trace-ids.js"),
  ]);
  return { ...startOtlpTracing(), logFields: traceIdsOfCurrentSpan, logTo: logOpenTelemetryTo };
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`sessionstore: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `sessionstore: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
