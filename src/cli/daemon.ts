/**
 * Detaching into the background (srelay without `-f`): the parent starts a
 * copy of itself in a new session, waits until the child reports that it is
 * listening (or has failed), prints what the child said and its PID, and exits.
 * The child writes everything it has to say before that point, errors
 * included, to stdout (its stderr goes nowhere), and nothing afterwards.
 *
 * @module
 */
import { spawn } from "node:child_process";

/** Environment variable that marks the detached child. */
export const DAEMON_CHILD_ENV = "SRELAY_DAEMON_CHILD";

/** Line the child prints on stdout once it serves; the parent stops reading there. */
export const READY_LINE = "srelay: ready";

/** True in the detached child. */
export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] === "1";
}

/** How long the parent waits for the child to report. */
const START_TIMEOUT_MS = 30_000;

/**
 * Starts the detached child and relays its start-up output.
 * Resolves to the exit code for the parent: 0 when the child serves.
 */
export function detach(command: readonly string[], args: readonly string[]): Promise<number> {
  const [program, ...prefix] = command;
  if (program === undefined) return Promise.resolve(1);
  const child = spawn(program, [...prefix, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, [DAEMON_CHILD_ENV]: "1" },
  });
  return new Promise((resolve) => {
    let output = "";
    let settled = false;
    const timer = setTimeout(() => finish(1, "srelay: the background process did not report within 30 s\n"), START_TIMEOUT_MS);
    function finish(code: number, message: string) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (message !== "") (code === 0 ? process.stdout : process.stderr).write(message);
      child.stdout?.destroy();
      child.unref();
      resolve(code);
    }
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      output += text;
      const ready = output.indexOf(`${READY_LINE}\n`);
      if (ready >= 0) {
        finish(0, `${output.slice(0, ready)}srelay: running in the background, PID ${child.pid}\n`);
      }
    });
    child.on("error", (error) => finish(1, `srelay: cannot start the background process: ${error.message}\n`));
    child.on("exit", (code) => finish(code === 0 ? 1 : code ?? 1, output));
  });
}
