/**
 * Entry point for Bun (`bun src/entry/bun.ts`, and `bun build --compile`).
 *
 * Only the Bun socket adapter is loaded up front. The node:net adapter
 * (`--io node`, `-x`, `-g`), the syslog transports, crypt(3)
 * and the `--user` calls are imported when `run()` asks for them: the
 * node: modules they pull in cost start-up time (scripts/build.ts splits
 * them into chunks of the compiled binary that load on first use).
 *
 * @module
 */
import { run } from "../main.ts";
import { bunApi } from "../runtime/_bun_api.ts";
import { bunRuntime } from "../runtime/bun.ts";

const { main } = bunApi();
const compiled = main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/");

const code = await run(
  {
    name: "bun",
    loadNativeRuntime: () => Promise.resolve(bunRuntime),
    loadNodeRuntime: async () => (await import("../runtime/node.ts")).nodeRuntime,
    selfCommand: compiled ? [process.execPath] : [process.execPath, main],
    syslog: {
      unix: async (path, report) => (await import("../runtime/syslog_unix_bun.ts")).openBunUnixSyslog(path, report),
      udp: async (host, port, report) => (await import("../runtime/syslog_udp.ts")).openUdpSyslog(host, port, report),
    },
    loadCrypt: async () => (await import("../runtime/crypt_bun.ts")).loadBunCrypt(),
    loadPrivileges: async () => (await import("../runtime/privileges_bun.ts")).bunPrivileges,
  },
  process.argv.slice(2),
);
process.exit(code);
