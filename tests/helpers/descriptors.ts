/**
 * Open file descriptors of a server process, for the end-to-end tests that
 * check nothing is left open (Linux /proc).
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import type { RunningServer } from "./srelay_process.ts";

/** Open descriptors of process `pid`. */
export function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Waits (at most `withinMs`) until `server` holds no more descriptors than `baseline`; fails if it does not. */
export async function descriptorsBackTo(server: RunningServer, baseline: number, withinMs = 5000): Promise<void> {
  const pid = server.process.pid!;
  const deadline = Date.now() + withinMs;
  let count = openDescriptors(pid);
  while (count > baseline && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    count = openDescriptors(pid);
  }
  assert.ok(count <= baseline, `server descriptors back to ${baseline}, still ${count}`);
}
