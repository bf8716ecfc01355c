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
import { openUdpSyslog } from "../runtime/syslog_udp.ts";
import { openDenoUnixSyslog } from "../runtime/syslog_unix_deno.ts";
import { loadDenoCrypt } from "../runtime/crypt_deno.ts";
import { loadDenoPrivileges } from "../runtime/privileges_deno.ts";

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
    syslog: { unix: openDenoUnixSyslog, udp: openUdpSyslog },
    loadCrypt: loadDenoCrypt,
    loadPrivileges: loadDenoPrivileges,
  },
  Deno.args,
);
Deno.exit(code);
