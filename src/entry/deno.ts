/**
 * Entry point for Deno (`deno task start`, and `deno compile`).
 *
 * @module
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../main.ts";
import { denoRuntime } from "../runtime/deno.ts";
import { nodeRuntime } from "../runtime/node.ts";

/** Permissions the server needs when it re-runs itself in the background. */
const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
];

const compiled = !/^deno(\.exe)?$/.test(basename(Deno.execPath()));
const selfCommand = compiled ? [Deno.execPath()] : [
  Deno.execPath(),
  "run",
  ...PERMISSIONS,
  "--config",
  fileURLToPath(new URL("../../deno.json", import.meta.url)),
  Deno.mainModule,
];

const code = await run(
  {
    name: "deno",
    loadNativeRuntime: () => Promise.resolve(denoRuntime),
    loadNodeRuntime: () => Promise.resolve(nodeRuntime),
    selfCommand,
  },
  Deno.args,
);
Deno.exit(code);
