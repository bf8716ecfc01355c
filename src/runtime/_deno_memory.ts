/**
 * Gives memory back to the operating system on Deno once the server goes
 * idle (`NetRuntime.releaseMemory`).
 *
 * After a burst of sessions, two things keep Deno's RSS high long after the
 * sessions are gone (measured: +30 to +40 MiB after 45 s of rest):
 * - V8's heap: the young generation grows to about 50 MiB under load and the
 *   old generation grows with the live sessions; V8's memory reducer gives
 *   them back only some 25-30 s after the load stops.
 * - glibc's main malloc arena: the native side (read buffers' backing
 *   stores, per-socket state) frees its memory, but glibc keeps the freed
 *   pages because live allocations sit above them; it never returns them.
 *
 * So a release runs one memory-reducing full GC (V8's `gc` function, which
 * this module makes available without `--v8-flags=--expose-gc`), then
 * `malloc_trim(0)` through FFI, which hands every free page back. Either
 * step is skipped where it cannot run: without the FFI permission, or off
 * glibc (musl, macOS).
 *
 * @module
 */

/** V8's `gc` function with the options it takes. */
type V8Gc = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/** What a release calls; null where it cannot run. Found on the first release. */
interface Releasers {
  readonly gc: V8Gc | null;
  readonly trim: (() => void) | null;
}

let releasers: Promise<Releasers> | undefined;

/**
 * V8's `gc` function: the global one when Deno runs with
 * `--v8-flags=--expose-gc`, otherwise the one V8 installs in a new context
 * while the flag is set for a moment.
 */
async function findGc(): Promise<V8Gc | null> {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === "function") return global as V8Gc;
  try {
    const [v8, vm] = await Promise.all([import("node:v8"), import("node:vm")]);
    v8.setFlagsFromString("--expose-gc");
    try {
      const gc: unknown = vm.runInNewContext("gc");
      return typeof gc === "function" ? gc as V8Gc : null;
    } finally {
      v8.setFlagsFromString("--no-expose-gc");
    }
  } catch {
    return null;
  }
}

/** `malloc_trim(0)` from glibc, when FFI is allowed and the C library is glibc. */
function findTrim(): (() => void) | null {
  if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  try {
    const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => libc.symbols.malloc_trim(0n);
  } catch {
    return null;
  }
}

async function findReleasers(): Promise<Releasers> {
  return { gc: await findGc(), trim: findTrim() };
}

/** Collects garbage and returns free memory to the system (best effort, never throws). */
export async function releaseDenoMemory(): Promise<void> {
  releasers ??= findReleasers();
  const { gc, trim } = await releasers;
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  trim?.();
}
