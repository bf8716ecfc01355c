/**
 * Starts the real srelay CLI as a child process for end-to-end tests: under
 * Deno, under Bun, as the compiled binary, or under Bun with node:net sockets.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** How the server is started. */
export type ServerMode = "deno" | "bun" | "binary" | "node-io";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DENO = `${ROOT}node_modules/.bin/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;

/** Path of the compiled binary used by the `binary` mode. */
export function binaryPath(): string {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  return process.env.SRELAY_BIN ?? `${ROOT}dist/srelay-${process.platform === "darwin" ? "darwin" : "linux"}-${arch}`;
}

/** Every mode, with a skip reason for modes that cannot run here (only a missing binary). */
export function serverModes(): Array<{ mode: ServerMode; skip: string | false }> {
  const binary = binaryPath();
  return [
    { mode: "bun", skip: false },
    { mode: "deno", skip: false },
    {
      mode: "binary",
      skip: existsSync(binary) ? false : `compiled binary ${binary} missing: run 'bun scripts/build.ts --host' first`,
    },
    { mode: "node-io", skip: false },
  ];
}

/** The command line that starts srelay in a mode. */
export function serverCommand(mode: ServerMode): string[] {
  switch (mode) {
    case "deno":
      return [DENO, "run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/entry/deno.ts`];
    case "bun":
      return [BUN, `${ROOT}src/entry/bun.ts`];
    case "binary":
      return [binaryPath()];
    case "node-io":
      return [BUN, `${ROOT}src/entry/bun.ts`, "--io", "node"];
  }
}

/** A running server. */
export interface RunningServer {
  readonly process: ChildProcess;
  /** Bound addresses from the start-up lines, e.g. `127.0.0.1:40123`, `[::1]:40124`. */
  readonly addresses: string[];
  /** Port of the first listener. */
  readonly port: number;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** Waits until the output matches `pattern` (bounded). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal. */
  signal(name: NodeJS.Signals): void;
  /** SIGTERM, then waits for exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Resolves with the exit code when the process ends. */
  readonly exited: Promise<number | null>;
}

/**
 * Signals the child by PID. (Deno's `ChildProcess.kill()` ignores every call
 * after the first, so a SIGHUP would swallow the later SIGTERM.)
 */
function sendSignal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    process.kill(child.pid!, name);
  } catch {
    // Already gone (ESRCH): nothing to signal.
  }
}

/** Options for `startServer`. */
export interface StartOptions {
  /** How many `listening on` lines to wait for (default 1). */
  readonly listeners?: number;
  readonly timeoutMs?: number;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** A command that runs srelay, e.g. `["setpriv", "--groups", "4", "--"]` (it must exec, keeping the PID). */
  readonly wrapper?: readonly string[];
  /** The srelay command instead of the mode's (e.g. a copy of the binary another user can read). */
  readonly command?: readonly string[];
}

/** Starts srelay with `args` (`-f` is added) and waits for its start-up lines. */
export async function startServer(
  mode: ServerMode,
  args: string[],
  options: StartOptions = {},
): Promise<RunningServer> {
  const [program, ...prefix] = [...(options.wrapper ?? []), ...(options.command ?? serverCommand(mode))];
  const child = spawn(program!, [...prefix, "-f", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    cwd: options.cwd ?? ROOT,
  });
  let output = "";
  const watchers = new Set<() => void>();
  const onText = (text: string) => {
    output += text;
    for (const watcher of watchers) watcher();
  };
  child.stdout!.setEncoding("utf8").on("data", onText);
  child.stderr!.setEncoding("utf8").on("data", onText);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let hasExited = false;
  exited.then(() => {
    hasExited = true;
    for (const watcher of watchers) watcher();
  });

  function waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`Timed out waiting for ${pattern} in server output:\n${output}`));
      }, timeoutMs);
      function check() {
        const match = output.match(pattern);
        if (match) {
          clearTimeout(timer);
          watchers.delete(check);
          resolve(match[0]);
        } else if (hasExited) {
          clearTimeout(timer);
          watchers.delete(check);
          reject(new Error(`Server exited before printing ${pattern}:\n${output}`));
        }
      }
      watchers.add(check);
      check();
    });
  }

  const expected = options.listeners ?? 1;
  const listening = new RegExp(`(?:listening on \\S+[^\\n]*\\n[\\s\\S]*?){${expected}}`);
  try {
    await waitForOutput(listening, options.timeoutMs ?? 30_000);
  } catch (error) {
    sendSignal(child, "SIGKILL");
    throw error;
  }
  const addresses = [...output.matchAll(/listening on (\S+)/g)].map((m) => m[1]!);
  const port = Number(addresses[0]!.slice(addresses[0]!.lastIndexOf(":") + 1));

  return {
    process: child,
    addresses,
    port,
    output: () => output,
    waitForOutput,
    signal: (name) => sendSignal(child, name),
    exited,
    async stop(timeoutMs = 15_000) {
      if (hasExited) return exited;
      sendSignal(child, "SIGTERM");
      const timer = setTimeout(() => sendSignal(child, "SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
