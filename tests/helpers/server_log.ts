/**
 * Waiting for log lines a running srelay writes after a given point, so a
 * test that repeats a request (or reloads twice) does not match an older
 * line.
 *
 * @module
 */
import type { RunningServer } from "./srelay_process.ts";

/**
 * Waits until the output written after offset `from` (an earlier
 * `server.output().length`) matches `pattern`, polling every 25 ms for at
 * most `timeoutMs`; resolves with the match. Rejects on timeout, or at once
 * when the server has exited.
 */
export async function waitForNewOutput(
  server: RunningServer,
  from: number,
  pattern: RegExp,
  timeoutMs = 3000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exit: string | null = null;
  server.exited.then((code) => {
    exit = code === null ? `signal ${server.process.signalCode}` : `code ${code}`;
  });
  for (;;) {
    const match = server.output().slice(from).match(pattern);
    if (match !== null) return match[0];
    if (exit !== null) {
      throw new Error(
        `Server exited (${exit}) before printing ${pattern}:\n${server.output().slice(from)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${pattern} in server output:\n${server.output().slice(from)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
