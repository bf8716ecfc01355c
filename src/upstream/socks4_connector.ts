/**
 * Client side of SOCKS4 and SOCKS4A toward a next hop.
 *
 * IPv4 targets go out as SOCKS4; names as SOCKS4A (DSTIP 0.0.0.1, the name
 * after the USERID), unresolved. SOCKS4 cannot carry IPv6, so an IPv6 target
 * fails before anything is sent. The USERID is the one given in the options
 * (the chain dialer passes the configured one, else the client's, else
 * "srelay").
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { SOCKS4_REPLY } from "../protocol/reply.ts";
import type { FailureReason } from "../protocol/reply.ts";
import { decodeSocks4Reply, encodeSocks4Request, SOCKS4_COMMAND, type Socks4Command } from "../protocol/socks4.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import type { Connector } from "./dialer.ts";
import { describeHop, HopError, hopHandshakeError, type HopLabel, hopRequestError } from "./hop_error.ts";

/** Options for `socks4Connector`. */
export interface Socks4ConnectorOptions {
  /** The hop's `host:port`, for error messages. */
  readonly hop: string;
  /** USERID sent in the request (default "srelay"). */
  readonly userId?: string;
  /** The request's CD (default CONNECT). */
  readonly command?: Socks4Command;
}

/** The USERID sent when neither the configuration nor the client gives one. */
export const DEFAULT_SOCKS4_USER_ID = "srelay";

const COMMAND_NAME: Record<Socks4Command, string> = {
  [SOCKS4_COMMAND.CONNECT]: "CONNECT",
  [SOCKS4_COMMAND.BIND]: "BIND",
};

/** What a SOCKS4 CD other than 90 stands for: identd trouble is an authorisation failure. */
function failureForSocks4Code(code: number): FailureReason {
  return code === SOCKS4_REPLY.NO_IDENTD || code === SOCKS4_REPLY.IDENTD_MISMATCH ? "not_allowed" : "general_failure";
}

const CODE_TEXT: Record<number, string> = {
  [SOCKS4_REPLY.REJECTED]: "request rejected or failed",
  [SOCKS4_REPLY.NO_IDENTD]: "cannot reach the client's identd",
  [SOCKS4_REPLY.IDENTD_MISMATCH]: "identd reports a different user ID",
};

/** Creates a connector that speaks SOCKS4/4A to a next hop. */
export function socks4Connector(options: Socks4ConnectorOptions): Connector {
  const label: HopLabel = { name: options.hop, protocol: "socks4" };
  const command = options.command ?? SOCKS4_COMMAND.CONNECT;
  const userId = options.userId ?? DEFAULT_SOCKS4_USER_ID;

  return {
    async connect(connection, inbox, target: Target, signal) {
      if (target.kind === "ipv6") {
        throw new HopError(
          label.name,
          "address_type_not_supported",
          `${describeHop(label)} cannot be asked for ${
            formatTarget(target)
          }: SOCKS4 carries IPv4 addresses and names only`,
        );
      }
      let request: Uint8Array;
      try {
        request = encodeSocks4Request(command, target, userId);
      } catch (error) {
        throw hopRequestError(label, target, "general_failure", error);
      }
      connection.write(request);
      return { bound: await readSocks4HopReply(options.hop, inbox, command, target, signal) };
    },
  };
}

/**
 * Reads one SOCKS4 reply from a next hop: the answer to a request, or the
 * second reply of a BIND (`stage` then says so in messages). Returns its
 * DSTIP:DSTPORT; a CD other than 90 throws a `HopError`.
 */
export async function readSocks4HopReply(
  hop: string,
  inbox: Inbox,
  command: Socks4Command,
  target: Target,
  signal: AbortSignal,
  stage = `the SOCKS4 ${COMMAND_NAME[command]} request`,
): Promise<Target> {
  const label: HopLabel = { name: hop, protocol: "socks4" };
  let reply: { code: number; bound: { host: string; port: number } };
  try {
    reply = await inbox.read(decodeSocks4Reply, signal);
  } catch (error) {
    throw hopHandshakeError(label, stage, error);
  }
  if (reply.code !== SOCKS4_REPLY.GRANTED) {
    throw new HopError(
      label.name,
      failureForSocks4Code(reply.code),
      `${describeHop(label)} refused ${COMMAND_NAME[command]} to ${formatTarget(target)}: ${
        CODE_TEXT[reply.code] ?? "unknown reply code"
      } (CD ${reply.code})`,
    );
  }
  return { kind: "ipv4", host: reply.bound.host, port: reply.bound.port };
}
