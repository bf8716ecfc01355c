/**
 * The SOCKS4 and SOCKS4a server side. Replies always carry VN 0 (the
 * original srelay sent 4 on errors, which strict clients reject).
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { SOCKS4_REPLY } from "../protocol/reply.ts";
import { decodeSocks4Request, encodeSocks4Reply, SOCKS4_COMMAND } from "../protocol/socks4.ts";
import type { Target } from "../protocol/target.ts";
import type { Connection } from "../runtime/types.ts";
import { type Responder, serveConnect } from "./connect.ts";
import { readOrReject } from "./read_request.ts";
import type { SessionContext } from "./session_context.ts";

function socks4Bound(bound: Target): { host: string; port: number } | null {
  return bound.kind === "ipv4" ? bound : null;
}

const SOCKS4_RESPONDER: Responder = {
  fail: () => encodeSocks4Reply(SOCKS4_REPLY.REJECTED, null),
  succeed: (bound) => encodeSocks4Reply(SOCKS4_REPLY.GRANTED, socks4Bound(bound)),
};

/** Serves a client whose first byte was 4. Throws protocol and network errors to the caller. */
export async function serveSocks4(
  client: Connection,
  inbox: Inbox,
  context: SessionContext,
  deadline: AbortSignal,
): Promise<void> {
  const request = await readOrReject(
    client,
    inbox,
    decodeSocks4Request,
    deadline,
    () => SOCKS4_RESPONDER.fail("general_failure"),
  );
  const version = request.target.kind === "domain" ? "4a" : "4";
  if (context.settings.refuseSocks4 || request.command !== SOCKS4_COMMAND.CONNECT) {
    await sendAndClose(client, SOCKS4_RESPONDER.fail("not_allowed"));
    const why = context.settings.refuseSocks4
      ? "SOCKS4 is refused because user/password authentication is required"
      : "BIND is not supported";
    context.logger.warn("{client} {version}: {why}", {
      session: context.id,
      client: await context.clientLabel,
      version,
      user: request.userId,
      why,
      outcome: "refused",
    });
    return;
  }
  await serveConnect(
    client,
    inbox,
    { version, target: request.target, user: request.userId },
    SOCKS4_RESPONDER,
    context,
  );
}
