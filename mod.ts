/**
 * srelay as a library: the server and the interfaces of its session stages,
 * the policy snapshot, the adapter interface, the codecs and the route table. The command-line program lives in `src/entry/`.
 *
 * @module
 */
export { run } from "./src/main.ts";
export type { Platform } from "./src/platform.ts";
export { type ServerOptions, SocksServer } from "./src/server/server.ts";
export type { RouteChoice, Router, RouteRequest } from "./src/server/router.ts";
export type { ServerScope, SessionSettings } from "./src/server/session_context.ts";
export type { Policy } from "./src/policy/policy.ts";
export type { AdmitDecision, Admitter, ClientInfo } from "./src/server/admit.ts";
export {
  type Identity,
  type NegotiationPolicy,
  NO_AUTHENTICATION,
  OPEN_NEGOTIATION,
  type Socks5Authenticator,
} from "./src/server/negotiate.ts";
export { ALLOW_ALL, type Authorization, type Authorizer } from "./src/server/authorize.ts";
export type { SessionRecord, SessionRecorder } from "./src/server/account.ts";
export * from "./src/runtime/types.ts";
export type { Target } from "./src/protocol/target.ts";
export * from "./src/protocol/socks4.ts";
export * from "./src/protocol/socks5.ts";
export * from "./src/protocol/socks5_auth.ts";
export * from "./src/protocol/http_connect.ts";
export { VERSION } from "./src/version.ts";
