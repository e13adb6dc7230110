import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { onShutdownSignals, SHUTDOWN_SIGNALS } from "../src/shutdown-signals.js";

describe("onShutdownSignals", () => {
  it.each(SHUTDOWN_SIGNALS)(
    "shuts down once on %s and keeps listening, so a repeat cannot kill the process",
    (signal) => {
      const target = new EventEmitter();
      const calls: string[] = [];
      onShutdownSignals(
        {
          shutdown: (received) => calls.push(`shutdown ${received}`),
          repeated: (received) => calls.push(`repeated ${received}`),
        },
        target,
      );
      target.emit(signal, signal);
      // Node restores a signal's default action (for these: terminate) once no listener is left.
      for (const name of SHUTDOWN_SIGNALS) expect(target.listenerCount(name)).toBe(1);
      target.emit(signal, signal);
      target.emit("SIGTERM", "SIGTERM");
      expect(calls).toEqual([`shutdown ${signal}`, `repeated ${signal}`, "repeated SIGTERM"]);
    },
  );
});
