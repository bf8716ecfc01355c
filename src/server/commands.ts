/**
 * Stage 5, command: one table, shared by SOCKS4 and SOCKS5, from the
 * request's command to the handler that serves it: CONNECT (`connect.ts`),
 * BIND (`bind.ts`) and UDP ASSOCIATE (`udp_associate.ts`).
 *
 * @module
 */
import type { Connection } from "../runtime/types.ts";
import type { SessionAccount } from "./account.ts";
import type { ClientInfo } from "./admit.ts";
import type { Authorization } from "./authorize.ts";
import { serveBind } from "./bind.ts";
import { serveConnect } from "./connect.ts";
import type { Handshake } from "./handshake.ts";
import type { Identity } from "./negotiate.ts";
import { Refusal } from "./refusal.ts";
import { type Command, requestTag, type SessionRequest } from "./request.ts";
import type { SessionContext } from "./session_context.ts";
import { serveUdpAssociate } from "./udp_associate.ts";

/** Everything a command handler works with. */
export interface CommandSession {
  readonly connection: Connection;
  readonly handshake: Handshake;
  readonly client: ClientInfo;
  readonly identity: Identity;
  readonly request: SessionRequest;
  /** What the authorize stage allowed (for a domain target, maybe the vetted addresses). */
  readonly authorization: Authorization & { readonly allowed: true };
  readonly context: SessionContext;
  readonly account: SessionAccount;
}

/**
 * Serves one request until the session ends. Refuses by throwing a
 * `Refusal`; any other failure it reports itself (reply and log line) and
 * never throws.
 */
export type CommandHandler = (session: CommandSession) => Promise<void>;

/** Refuses a command this server does not serve (REP 07, CD 0x5B). */
export function commandNotSupported(session: CommandSession): Promise<void> {
  const { request } = session;
  return Promise.reject(
    new Refusal(
      requestTag(request),
      "command_not_supported",
      "command not supported",
      request.responder.fail("command_not_supported"),
    ),
  );
}

/** The handler of each command. */
export const COMMANDS: Readonly<Record<Command, CommandHandler>> = {
  connect: serveConnect,
  bind: serveBind,
  udp: serveUdpAssociate,
};
