/**
 * Detaching into the background (srelay without `-f`): the parent starts a
 * copy of itself in a new session, waits until the child reports that it is
 * listening (or has failed), prints what the child said and its PID, and exits.
 * The child writes everything it has to say before that point, errors
 * included, to stdout (its stderr goes nowhere), and nothing afterwards.
 *
 * @module
 */
import { DAEMON_CHILD_ENV } from "./process_role.ts";
import { spawnUntilReady } from "./ready_child.ts";

/**
 * Starts the detached child and relays its start-up output.
 * Resolves to the exit code for the parent: 0 when the child serves.
 */
export async function detach(command: readonly string[], args: readonly string[]): Promise<number> {
  try {
    const { child, lines } = await spawnUntilReady(command, args, {
      env: { [DAEMON_CHILD_ENV]: "1" },
      detached: true,
      stderr: "ignore",
    });
    child.unref();
    for (const line of lines) process.stdout.write(`${line}\n`);
    process.stdout.write(`srelay: running in the background, PID ${child.pid}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
}
