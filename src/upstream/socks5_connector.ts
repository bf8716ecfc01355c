/**
 * Client side of SOCKS5 (RFC 1928, RFC 1929) toward a next hop.
 *
 * The greeting offers "no authentication", plus username/password only when
 * credentials exist for the hop: offering 0x02 with nothing to send breaks
 * Dante and gost (srelay-reference §3 item 18). The RFC 1929 request is sent
 * with VER 0x01; replies with VER 0x01 or 0x05 are accepted. Names are
 * forwarded unresolved (ATYP 3), so the hop does the lookup (socks5h).
 *
 * Each message is written only after the previous answer arrived: hops that
 * read one message per `read()` (srelay itself) break on pipelined input.
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { ProtocolError } from "../protocol/decoded.ts";
import { failureForSocks5Code } from "../protocol/reply.ts";
import {
  decodeSocks5MethodSelection,
  decodeSocks5Reply,
  encodeSocks5Greeting,
  encodeSocks5Request,
  SOCKS5_COMMAND,
  SOCKS5_METHOD,
  type Socks5Command,
} from "../protocol/socks5.ts";
import { decodeUserPassReply, encodeUserPassRequest } from "../protocol/socks5_auth.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import { type Connection, NetError } from "../runtime/types.ts";
import type { Connector, Credentials } from "./dialer.ts";
import { describeHop, HopError, hopHandshakeError, type HopLabel, hopRequestError } from "./hop_error.ts";

/** Options for `socks5Connector`. */
export interface Socks5ConnectorOptions {
  /** The hop's `host:port`, for error messages. */
  readonly hop: string;
  /** Credentials for the hop (srelay.passwd), asked for at each connect; `null` when there are none. */
  readonly credentials?: () => Credentials | null;
  /** The request's CMD (default CONNECT). */
  readonly command?: Socks5Command;
}

/**
 * The hop did not answer the greeting as a SOCKS5 server (another version
 * byte, or it closed the connection). A `/S` hop is then retried with SOCKS4.
 */
export class NotSocks5Error extends HopError {
  constructor(hop: string, message: string, options?: ErrorOptions) {
    super(hop, "general_failure", message, options);
    this.name = "NotSocks5Error";
  }
}

/** SOCKS5 CMD names for messages. */
const COMMAND_NAME: Record<Socks5Command, string> = {
  [SOCKS5_COMMAND.CONNECT]: "CONNECT",
  [SOCKS5_COMMAND.BIND]: "BIND",
  [SOCKS5_COMMAND.UDP_ASSOCIATE]: "UDP ASSOCIATE",
};

/** Creates a connector that speaks SOCKS5 to a next hop. */
export function socks5Connector(options: Socks5ConnectorOptions): Connector {
  const label: HopLabel = { name: options.hop, protocol: "socks5" };
  const command = options.command ?? SOCKS5_COMMAND.CONNECT;

  async function greet(
    connection: Connection,
    inbox: Inbox,
    credentials: Credentials | null,
    signal: AbortSignal,
  ): Promise<number> {
    const methods: number[] = [SOCKS5_METHOD.NO_AUTH];
    if (credentials !== null) methods.push(SOCKS5_METHOD.USERNAME_PASSWORD);
    connection.write(encodeSocks5Greeting(methods));
    try {
      return (await inbox.read(decodeSocks5MethodSelection, signal)).method;
    } catch (error) {
      if (
        error instanceof ProtocolError ||
        (error instanceof NetError && (error.code === "closed" || error.code === "reset"))
      ) {
        throw new NotSocks5Error(
          label.name,
          `${describeHop(label)} did not answer the SOCKS5 greeting as a SOCKS5 server: ${error.message}`,
          { cause: error },
        );
      }
      throw hopHandshakeError(label, "the SOCKS5 greeting", error);
    }
  }

  async function authenticate(
    connection: Connection,
    inbox: Inbox,
    method: number,
    credentials: Credentials | null,
    signal: AbortSignal,
  ): Promise<void> {
    if (method === SOCKS5_METHOD.NO_AUTH) return;
    if (method === SOCKS5_METHOD.NO_ACCEPTABLE) {
      throw new HopError(
        label.name,
        "not_allowed",
        credentials === null
          ? `${
            describeHop(label)
          } accepts none of the offered authentication methods: it needs credentials (add it to srelay.passwd)`
          : `${
            describeHop(label)
          } accepts none of the offered authentication methods (no authentication, username/password)`,
      );
    }
    if (method !== SOCKS5_METHOD.USERNAME_PASSWORD || credentials === null) {
      throw new HopError(
        label.name,
        method === SOCKS5_METHOD.USERNAME_PASSWORD ? "not_allowed" : "general_failure",
        method === SOCKS5_METHOD.USERNAME_PASSWORD
          ? `${
            describeHop(label)
          } asks for username/password authentication: it needs credentials (add it to srelay.passwd)`
          : `${describeHop(label)} chose authentication method 0x${
            method.toString(16).padStart(2, "0")
          }, which was not offered`,
      );
    }
    let request: Uint8Array;
    try {
      request = encodeUserPassRequest(credentials.username, credentials.password);
    } catch (error) {
      throw new HopError(
        label.name,
        "not_allowed",
        `${describeHop(label)} cannot be sent the credentials from srelay.passwd: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    }
    connection.write(request);
    let success: boolean;
    try {
      success = (await inbox.read(decodeUserPassReply, signal)).success;
    } catch (error) {
      throw hopHandshakeError(label, "username/password authentication", error);
    }
    if (!success) {
      throw new HopError(
        label.name,
        "not_allowed",
        `${describeHop(label)} rejected username/password authentication as ${credentials.username}`,
      );
    }
  }

  return {
    async connect(connection, inbox, target: Target, signal) {
      const credentials = options.credentials?.() ?? null;
      const method = await greet(connection, inbox, credentials, signal);
      await authenticate(connection, inbox, method, credentials, signal);
      let request: Uint8Array;
      try {
        request = encodeSocks5Request(command, target);
      } catch (error) {
        throw hopRequestError(label, target, "address_type_not_supported", error);
      }
      connection.write(request);
      return { bound: await readSocks5HopReply(options.hop, inbox, command, target, signal) };
    },
  };
}

/**
 * Reads one SOCKS5 reply from a next hop: the answer to a request, or the
 * second reply of a BIND (`stage` then says so in messages). Returns its
 * BND; a REP other than 0 throws a `HopError` with the reason it stands for.
 */
export async function readSocks5HopReply(
  hop: string,
  inbox: Inbox,
  command: Socks5Command,
  target: Target,
  signal: AbortSignal,
  stage = `the SOCKS5 ${COMMAND_NAME[command]} request`,
): Promise<Target> {
  const label: HopLabel = { name: hop, protocol: "socks5" };
  let reply: { code: number; bound: Target };
  try {
    reply = await inbox.read(decodeSocks5Reply, signal);
  } catch (error) {
    throw hopHandshakeError(label, stage, error);
  }
  if (reply.code !== 0) {
    const reason = failureForSocks5Code(reply.code);
    throw new HopError(
      label.name,
      reason,
      `${describeHop(label)} refused ${COMMAND_NAME[command]} to ${formatTarget(target)}: ${
        reason.replaceAll("_", " ")
      } (REP 0x${reply.code.toString(16).padStart(2, "0")})`,
    );
  }
  return reply.bound;
}
