/**
 * Entry point for Deno (`deno task start`, and `deno compile`).
 *
 * Only the Deno socket adapter is loaded up front; the node:net adapter,
 * the syslog transports, crypt(3) and the `--user` calls are imported when
 * `run()` asks for them (about 3 ms of start-up).
 *
 * @module
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../main.ts";
import { DENO_PERMISSIONS } from "./deno_permissions.ts";
import { denoRuntime } from "../runtime/deno.ts";

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
    loadNodeRuntime: async () => (await import("../runtime/node.ts")).nodeRuntime,
    selfCommand,
    syslog: {
      unix: async (path, report) => (await import("../runtime/syslog_unix_deno.ts")).openDenoUnixSyslog(path, report),
      udp: async (host, port, report) => (await import("../runtime/syslog_udp.ts")).openUdpSyslog(host, port, report),
    },
    loadCrypt: async () => (await import("../runtime/crypt_deno.ts")).loadDenoCrypt(),
    loadPrivileges: async () => (await import("../runtime/privileges_deno.ts")).loadDenoPrivileges(),
  },
  Deno.args,
);
Deno.exit(code);
