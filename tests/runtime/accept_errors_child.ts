/**
 * The child process of `accept_errors_test.ts`: listens on 127.0.0.1 with
 * one adapter (argument: `deno`, `bun` or `node`) under the descriptor limit
 * its parent set, and obeys one command per stdin line, answering with one
 * JSON line on stdout:
 *
 * - at start: `{"port": N}`;
 * - `exhaust`: opens /dev/null until EMFILE (at most 1,024 times) →
 *   `{"held": N}`;
 * - `free`: closes them → `{"errors": [...], "cpuMs": N, "wallMs": N}`, the
 *   accept errors reported and the CPU time used since `exhaust`;
 * - `exit`: exits.
 *
 * Every accepted connection is sent `served\n` and FIN.
 *
 * @module
 */
import { closeSync, openSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import type { NetError, NetRuntime } from "../../src/runtime/types.ts";

const MAX_HELD = 1_024;

const adapter = process.argv[process.argv.length - 1];
const runtime: NetRuntime = adapter === "deno"
  ? (await import("../../src/runtime/deno.ts")).denoRuntime
  : adapter === "bun"
  ? (await import("../../src/runtime/bun.ts")).bunRuntime
  : (await import("../../src/runtime/node.ts")).nodeRuntime;

// Deno 2.9 registers a signal handler lazily and panics when that finds no
// free descriptor; registering one now avoids it (a server does at start-up).
process.on("SIGUSR2", () => {});

const errors: { code: string; message: string }[] = [];
const listener = await runtime.listen({
  host: "127.0.0.1",
  port: 0,
  onConnection(connection) {
    connection.setHandlers({ onData() {}, onEnd() {}, onClose() {} });
    connection.write(new TextEncoder().encode("served\n"));
    connection.closeWrite();
  },
  onAcceptError(error: NetError) {
    errors.push({ code: error.code, message: error.message });
  },
});

const held: number[] = [];
let since = { cpu: process.cpuUsage(), wall: Date.now() };

function answer(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

answer({ port: listener.address.port });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exhaust") {
    since = { cpu: process.cpuUsage(), wall: Date.now() };
    try {
      while (held.length < MAX_HELD) held.push(openSync("/dev/null", "r"));
    } catch {
      // EMFILE: the limit is reached.
    }
    answer({ held: held.length });
  } else if (line === "free") {
    const cpu = process.cpuUsage(since.cpu);
    const wallMs = Date.now() - since.wall;
    for (const fd of held.splice(0)) closeSync(fd);
    answer({ errors, cpuMs: (cpu.user + cpu.system) / 1_000, wallMs });
  } else if (line === "exit") {
    listener.close();
    process.exit(0);
  }
}
