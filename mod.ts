/**
 * srelay as a library: the server, the adapter interface, the codecs and the
 * route table. The command-line program lives in `src/entry/`.
 *
 * @module
 */
export { run } from "./src/main.ts";
export type { Platform } from "./src/platform.ts";
export { SocksServer, type ServerOptions } from "./src/server/server.ts";
export type { Router, RouteChoice, RouteRequest } from "./src/server/router.ts";
export * from "./src/runtime/types.ts";
export type { Target } from "./src/protocol/target.ts";
export * from "./src/protocol/socks4.ts";
export * from "./src/protocol/socks5.ts";
export * from "./src/protocol/socks5_auth.ts";
export * from "./src/protocol/http_connect.ts";
export { VERSION } from "./src/version.ts";
