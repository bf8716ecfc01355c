/**
 * Entry point for Bun (`bun src/entry/bun.ts`, and `bun build --compile`).
 *
 * @module
 */
import { run } from "../main.ts";
import { bunApi } from "../runtime/_bun_api.ts";
import { bunRuntime } from "../runtime/bun.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { openUdpSyslog } from "../runtime/syslog_udp.ts";
import { openBunUnixSyslog } from "../runtime/syslog_unix_bun.ts";
import { loadBunCrypt } from "../runtime/crypt_bun.ts";
import { bunPrivileges } from "../runtime/privileges_bun.ts";

const { main } = bunApi();
const compiled = main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/");

const code = await run(
  {
    name: "bun",
    loadNativeRuntime: () => Promise.resolve(bunRuntime),
    loadNodeRuntime: () => Promise.resolve(nodeRuntime),
    selfCommand: compiled ? [process.execPath] : [process.execPath, main],
    syslog: { unix: openBunUnixSyslog, udp: openUdpSyslog },
    loadCrypt: loadBunCrypt,
    loadPrivileges: () => Promise.resolve(bunPrivileges),
  },
  process.argv.slice(2),
);
process.exit(code);
