/**
 * Runs a real proxy daemon from Debian (microsocks, danted, tinyproxy) as a
 * next hop for tests: starts it in the foreground, waits until its port
 * accepts connections, and stops it (SIGTERM, then SIGKILL) at the end.
 * The daemon runs in its own process group, which is signalled as a whole,
 * so helpers it forks (Dante's negotiate/request/io children) go too.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import process from "node:process";

/** A running peer daemon. */
export interface PeerProcess {
  readonly host: string;
  readonly port: number;
  /** What the daemon printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Stops the daemon and waits (bounded) until it exited. */
  stop(): Promise<void>;
}

/** Options for `startPeer`. */
export interface StartPeerOptions {
  /** Program and arguments; the program must stay in the foreground. */
  readonly command: readonly [string, ...string[]];
  /** Where the daemon listens once ready. */
  readonly host: string;
  readonly port: number;
  /** Longest wait for the port to accept connections (default 5000 ms). */
  readonly readyTimeoutMs?: number;
}

/** Starts a daemon and resolves once its port accepts a TCP connection. */
export async function startPeer(options: StartPeerOptions): Promise<PeerProcess> {
  const [program, ...args] = options.command;
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", (error) => {
      output += `spawn failed: ${error.message}\n`;
      exited = true;
      resolve();
    });
  });
  child.stdout?.setEncoding("utf8").on("data", (text: string) => (output += text));
  child.stderr?.setEncoding("utf8").on("data", (text: string) => (output += text));
  const peer: PeerProcess = {
    host: options.host,
    port: options.port,
    output: () => output,
    stop: () => stop(child, exit, () => exited),
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 5000);
  while (!(await accepts(options.host, options.port))) {
    if (exited || Date.now() > deadline) {
      await peer.stop();
      throw new Error(`Cannot start ${program}: port ${options.port} never accepted connections\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return peer;
}

async function stop(child: ChildProcess, exit: Promise<void>, exited: () => boolean): Promise<void> {
  if (!exited()) {
    signalGroup(child, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 3000);
    await exit;
    clearTimeout(timer);
  }
  signalGroup(child, "SIGKILL");
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/** Signals the child's process group (the child is its leader), or the child alone if that fails. */
function signalGroup(child: ChildProcess, signal: "SIGTERM" | "SIGKILL"): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}
