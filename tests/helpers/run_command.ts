/**
 * Runs an external program (curl, ncat, ...) with a time limit and collects
 * its output.
 *
 * @module
 */
import { spawn } from "node:child_process";

/** What a finished command printed and returned. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `program args`, feeding `input` on stdin; kills it after `timeoutMs`. */
export function runCommand(
  program: string,
  args: string[],
  options: { input?: string | Uint8Array; timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    // SIGTERM first so a program with children (the bench) can clean up; SIGKILL 5 s later.
    let killer: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      killer = setTimeout(() => {
        try {
          process.kill(child.pid!, "SIGKILL");
        } catch {
          // Exited meanwhile: nothing to kill.
        }
      }, 5000);
    }, options.timeoutMs ?? 15_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
