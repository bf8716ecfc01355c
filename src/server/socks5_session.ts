/**
 * The SOCKS5 server side (RFC 1928): method negotiation, request, dispatch.
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { socks5CodeFor } from "../protocol/reply.ts";
import {
  decodeSocks5Greeting,
  decodeSocks5Request,
  encodeSocks5MethodSelection,
  encodeSocks5Reply,
  SOCKS5_COMMAND,
  SOCKS5_METHOD,
} from "../protocol/socks5.ts";
import type { Connection } from "../runtime/types.ts";
import { type Responder, serveConnect } from "./connect.ts";
import { readOrReject } from "./read_request.ts";
import type { SessionContext } from "./session_context.ts";
import { hexByte } from "../util/hex.ts";

const SOCKS5_RESPONDER: Responder = {
  fail: (reason) => encodeSocks5Reply(socks5CodeFor(reason), null),
  succeed: (bound) => encodeSocks5Reply(0, bound),
};

const COMMAND_TEXT: Record<number, string> = {
  [SOCKS5_COMMAND.CONNECT]: "CON",
  [SOCKS5_COMMAND.BIND]: "BND",
  [SOCKS5_COMMAND.UDP_ASSOCIATE]: "UDP",
};

/** Serves a client whose first byte was 5. Throws protocol and network errors to the caller. */
export async function serveSocks5(
  client: Connection,
  inbox: Inbox,
  context: SessionContext,
  deadline: AbortSignal,
): Promise<void> {
  const greeting = await readOrReject(
    client,
    inbox,
    decodeSocks5Greeting,
    deadline,
    () => encodeSocks5MethodSelection(SOCKS5_METHOD.NO_ACCEPTABLE),
  );
  const method = context.settings.socks5Methods.find((m) => greeting.methods.includes(m));
  if (method === undefined) {
    await sendAndClose(client, encodeSocks5MethodSelection(SOCKS5_METHOD.NO_ACCEPTABLE));
    context.logger.warn("{client} 5: no acceptable authentication method (offered {offered})", {
      session: context.id,
      client: await context.clientLabel,
      offered: greeting.methods.map(hexByte).join(","),
      outcome: "no_acceptable_method",
    });
    return;
  }
  client.write(encodeSocks5MethodSelection(method));
  const request = await readOrReject(
    client,
    inbox,
    decodeSocks5Request,
    deadline,
    (error) => SOCKS5_RESPONDER.fail(error.reply),
  );
  if (request.command !== SOCKS5_COMMAND.CONNECT) {
    await sendAndClose(client, SOCKS5_RESPONDER.fail("command_not_supported"));
    context.logger.warn("{client} 5-{command}: command not supported", {
      session: context.id,
      client: await context.clientLabel,
      command: COMMAND_TEXT[request.command] ?? String(request.command),
      outcome: "command_not_supported",
    });
    return;
  }
  await serveConnect(client, inbox, { version: "5", target: request.target, user: "" }, SOCKS5_RESPONDER, context);
}
