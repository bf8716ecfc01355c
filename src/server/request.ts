/**
 * Stage 3, request: the SOCKS4/4a or SOCKS5 request, decoded into one
 * protocol-neutral value. A malformed request gets the reply its protocol
 * prescribes before the error goes on to be logged.
 *
 * @module
 */
import { decodeSocks4Request, SOCKS4_COMMAND } from "../protocol/socks4.ts";
import { decodeSocks5Request, SOCKS5_COMMAND } from "../protocol/socks5.ts";
import type { Target } from "../protocol/target.ts";
import type { Handshake } from "./handshake.ts";
import { type Responder, SOCKS4_RESPONDER, SOCKS5_RESPONDER } from "./responder.ts";

/** The commands of SOCKS4 and SOCKS5. */
export type Command = "connect" | "bind" | "udp";

/** How each command appears in log lines (`5-CON`), as srelay writes it. */
export const COMMAND_TAG: Readonly<Record<Command, string>> = { connect: "CON", bind: "BND", udp: "UDP" };

/**
 * How a request is named in log lines: `5-CON`, `4a-BND`, `5-UDP`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(requestTag({ version: "4a", command: "bind" }), "4a-BND");
 * ```
 */
export function requestTag(request: Pick<SessionRequest, "version" | "command">): string {
  return `${request.version}-${COMMAND_TAG[request.command]}`;
}

/** A decoded request, whatever protocol carried it. */
export interface SessionRequest {
  /** `4`, `4a` or `5`, as it appears in log lines. */
  readonly version: "4" | "4a" | "5";
  readonly command: Command;
  readonly target: Target;
  /** The SOCKS4 USERID (empty for SOCKS5, which has none in its request). */
  readonly userId: string;
  /** How the replies to this request are encoded. */
  readonly responder: Responder;
}

const SOCKS5_COMMANDS: Readonly<Record<number, Command>> = {
  [SOCKS5_COMMAND.CONNECT]: "connect",
  [SOCKS5_COMMAND.BIND]: "bind",
  [SOCKS5_COMMAND.UDP_ASSOCIATE]: "udp",
};

/** Reads a SOCKS5 request (after the method negotiation). */
export async function readSocks5Request(handshake: Handshake): Promise<SessionRequest> {
  const request = await handshake.read(decodeSocks5Request, (error) => SOCKS5_RESPONDER.fail(error.reply));
  return {
    version: "5",
    command: SOCKS5_COMMANDS[request.command] ?? "connect",
    target: request.target,
    userId: "",
    responder: SOCKS5_RESPONDER,
  };
}

/** Reads a SOCKS4 or SOCKS4a request; its USERID is what the negotiate stage sees. */
export async function readSocks4Request(handshake: Handshake): Promise<SessionRequest> {
  const request = await handshake.read(decodeSocks4Request, () => SOCKS4_RESPONDER.fail("general_failure"));
  return {
    version: request.target.kind === "domain" ? "4a" : "4",
    command: request.command === SOCKS4_COMMAND.BIND ? "bind" : "connect",
    target: request.target,
    userId: request.userId,
    responder: SOCKS4_RESPONDER,
  };
}
