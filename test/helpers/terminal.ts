import { execFile, spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Why terminal tests cannot run here (tmux missing), or undefined when they can. */
export function tmuxMissing(): string | undefined {
  if (spawnSync("sh", ["-c", "command -v tmux"]).status === 0) return undefined;
  const reason = "tmux is not installed (scripts/setup-servers.sh installs it)";
  if (process.env.SESSIONSTORE_REQUIRE_SERVERS === "1") {
    throw new Error(`SESSIONSTORE_REQUIRE_SERVERS=1 but ${reason}`);
  }
  return reason;
}

let sockets = 0;

/**
 * A program running in a pseudo-terminal of a tmux server of its own (its own socket, no
 * config): what a person at a terminal sees, colours included, and keys they type.
 */
export class Terminal {
  private constructor(private readonly socket: string) {}

  /** Starts `command` (argv) in a 200x50 terminal; when it exits, the pane says `[exit N]`. */
  static async start(command: string[], env: Record<string, string> = {}): Promise<Terminal> {
    const socket = `sessionstore-test-${process.pid}-${sockets++}`;
    // The shell survives ^C (trapped, not ignored: the program gets the default) to say the code.
    const script = 'trap true INT; "$@"; echo "[exit $?]"; sleep 600';
    // NO_COLOR from the test's own environment must not reach the program: env -u drops it.
    const argv = [
      "env",
      "-u",
      "NO_COLOR",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...command,
    ];
    await exec("tmux", [
      "-L",
      socket,
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-x",
      "200",
      "-y",
      "50",
      "sh",
      "-c",
      script,
      "sh",
      ...argv,
    ]);
    return new Terminal(socket);
  }

  /** The screen (and what scrolled off it), with colour escapes when `escapes`. */
  async screen(escapes = false): Promise<string> {
    const { stdout } = await exec("tmux", [
      "-L",
      this.socket,
      "capture-pane",
      "-p",
      "-J",
      "-S",
      "-",
      ...(escapes ? ["-e"] : []),
    ]);
    return stdout;
  }

  /** Waits until the screen shows `pattern`; resolves to the screen. */
  async waitFor(pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      if (typeof pattern === "string" ? screen.includes(pattern) : pattern.test(screen))
        return screen;
      if (Date.now() > deadline) {
        throw new Error(`the terminal did not show ${String(pattern)}; it shows:\n${screen}`);
      }
      await sleep(50);
    }
  }

  /** Waits for the program to exit; resolves to its exit code and the screen (with escapes). */
  async exited(timeoutMs = 15_000): Promise<{ code: number; screen: string; escaped: string }> {
    const screen = await this.waitFor(/\[exit \d+\]/, timeoutMs);
    const code = Number(/\[exit (\d+)\]/.exec(screen)?.[1]);
    return {
      code,
      screen: screen.replace(/\[exit \d+\][\s\S]*$/, ""),
      escaped: await this.screen(true),
    };
  }

  /** Types keys (tmux send-keys names: "y", "Enter", "C-c"). */
  async keys(...keys: string[]): Promise<void> {
    await exec("tmux", ["-L", this.socket, "send-keys", ...keys]);
  }

  async close(): Promise<void> {
    await exec("tmux", ["-L", this.socket, "kill-server"]).catch(() => undefined);
  }
}
