import type { EventEmitter } from "node:events";

/** The signals on which the server shuts down gracefully. */
export const SHUTDOWN_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/** What to do on the first shutdown signal, and on any after it. */
export interface ShutdownSignalHandlers {
  shutdown(signal: NodeJS.Signals): void;
  repeated(signal: NodeJS.Signals): void;
}

/**
 * Calls `shutdown` on the first SIGTERM or SIGINT that `target` (the process) receives, and
 * `repeated` on any later one. The same signal often arrives twice: `npm start` forwards the one
 * it gets to the server, which a terminal's Ctrl-C or systemd (signalling the whole group) has
 * already reached. So the listeners stay for the life of the process: with none left, Node would
 * restore the default action, and the repeat would kill the server in the middle of its shutdown.
 */
export function onShutdownSignals(
  handlers: ShutdownSignalHandlers,
  target: EventEmitter = process,
): void {
  let received = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      handlers.repeated(signal);
      return;
    }
    received = true;
    handlers.shutdown(signal);
  };
  for (const signal of SHUTDOWN_SIGNALS) target.on(signal, onSignal);
}
