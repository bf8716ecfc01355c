/**
 * The version string, taken from deno.json at build time so that compiled
 * binaries carry it without reading any file at run time.
 *
 * @module
 */
import manifest from "../deno.json" with { type: "json" };

/** srelay's version, e.g. `0.5.0`. */
export const VERSION: string = manifest.version;
