/**
 * Entry point for Deno (`deno task start`, and `deno compile`).
 *
 * @module
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../main.ts";
import { DENO_PERMISSIONS } from "./deno_permissions.ts";
import { denoRuntime } from "../runtime/deno.ts";
import { nodeRuntime } from "../runtime/node.ts";

const compiled = !/^deno(\.exe)?$/.test(basename(Deno.execPath()));
const selfCommand = compiled ? [Deno.execPath()] : [
  Deno.execPath(),
  "run",
  ...DENO_PERMISSIONS,
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
