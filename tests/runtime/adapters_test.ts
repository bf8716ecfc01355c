/**
 * Runs the adapter conformance suite for the adapters of the current
 * runtime: under Bun the bun and node adapters, under Deno the deno and node
 * adapters. Adapter modules are imported dynamically so that Deno never
 * loads the Bun adapter and Bun never loads the Deno one.
 *
 * @module
 */
import type { NetRuntime } from "../../src/runtime/types.ts";
import { type ConformanceOptions, runConformance } from "./conformance.ts";

declare const Bun: unknown;

const onBun = typeof Bun !== "undefined";
/** Bun reports every failed connect as ECONNREFUSED (oven-sh/bun#37093). */
const hostOptions: ConformanceOptions = { connectErrnoLost: onBun };

const native: NetRuntime = onBun
  ? (await import("../../src/runtime/bun.ts")).bunRuntime
  : (await import("../../src/runtime/deno.ts")).denoRuntime;
const { nodeRuntime } = await import("../../src/runtime/node.ts");

/** Bun's own UDP sockets turn on IP_RECVERR, so they hear ICMP errors. */
const nativeOptions: ConformanceOptions = { ...hostOptions, datagramIcmpErrors: onBun };

runConformance(native.name, native, nativeOptions);
runConformance("node", nodeRuntime, hostOptions);
// Native listener, node:net dialler (how a server binds a source address):
// the relay between two different adapters, where it copies the chunks of a
// source that reuses them before a sink that keeps them.
runConformance(`${native.name}+node`, {
  ...native,
  canBindSource: nodeRuntime.canBindSource,
  connect: nodeRuntime.connect,
}, nativeOptions);
