/**
 * CONNECT, shared by SOCKS4/4a and SOCKS5: choose the route, dial, answer
 * the client, relay, and log one line for the request and one for the
 * finished session.
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { relay } from "../io/relay.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import type { FailureReason } from "../protocol/reply.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import type { Connection } from "../runtime/types.ts";
import type { DialResult } from "../upstream/dialer.ts";
import { failureReasonFor } from "./reply_for_error.ts";
import type { RouteChoice } from "./router.ts";
import type { SessionContext } from "./session_context.ts";

/** Builds a protocol's reply bytes. */
export interface Responder {
  fail(reason: FailureReason): Uint8Array;
  succeed(bound: Target): Uint8Array;
}

/** A decoded CONNECT request, whatever protocol carried it. */
export interface ConnectRequest {
  /** `4`, `4a` or `5`, as it appears in log lines. */
  readonly version: string;
  readonly target: Target;
  /** SOCKS4 USERID or the RFC 1929 user name; empty when there is none. */
  readonly user: string;
}

const ATYP_TEXT = { ipv4: "ipv4", ipv6: "ipv6", domain: "fqdn" } as const;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Serves one CONNECT request until the session ends. Never throws. */
export async function serveConnect(
  client: Connection,
  inbox: Inbox,
  request: ConnectRequest,
  responder: Responder,
  context: SessionContext,
): Promise<void> {
  const started = performance.now();
  const label = await context.clientLabel;
  const target = formatTarget(request.target);
  const fields = {
    session: context.id,
    client: label,
    version: request.version,
    command: "CON",
    target,
    user: request.user,
  };
  let route: RouteChoice | undefined;
  const fail = async (error: unknown) => {
    const reason = failureReasonFor(error);
    await sendAndClose(client, responder.fail(reason));
    context.logger.warn(
      "{client} {version}-{command} {target} {route} failed: {reason}: {error} time={seconds}s",
      {
        ...fields,
        route: route?.description ?? "-",
        reason,
        error: errorText(error),
        seconds: ((performance.now() - started) / 1000).toFixed(3),
        outcome: "failed",
      },
    );
  };
  try {
    route = await context.router.choose({ target: request.target, command: "connect", client: client.remote });
  } catch (error) {
    return fail(error);
  }
  context.logger.info("{client} {version}-{command} {target}({atyp}) {user} {route}", {
    ...fields,
    atyp: ATYP_TEXT[request.target.kind],
    user: request.user === "" ? "-" : request.user,
    route: route.description,
  });
  const { settings } = context;
  const localHost = settings.sameInterface ? client.local.host : settings.sourceAddress ?? undefined;
  let dialed: DialResult;
  try {
    dialed = await route.dialer.dial(request.target, {
      signal: context.shutdown,
      userId: request.user,
      ...(localHost === undefined ? {} : { localHost }),
    });
  } catch (error) {
    return fail(error);
  }
  if (client.closed) {
    dialed.connection.close();
    context.logger.info("{client} {version}-{command} {target} {route}: client left before the reply", {
      ...fields,
      route: route.description,
      outcome: "client_gone",
    });
    return;
  }
  client.write(responder.succeed(dialed.bound));
  const result = await relay(client, dialed.connection, {
    idleTimeoutMs: settings.idleTimeoutMs,
    finWaitMs: settings.finWaitMs,
    clientRest: inbox.takeRest(),
    ...(inbox.ended ? { clientEnded: true } : {}),
    targetRest: dialed.rest,
    ...(dialed.ended ? { targetEnded: true } : {}),
    signal: context.shutdown,
  });
  const detail = result.error === undefined ? "" : ` (${result.error.message})`;
  context.logger.info(
    "{client} {version}-{command} {target} {route} bound={bound} up={bytesUp} down={bytesDown} time={seconds}s {outcome}{detail}",
    {
      ...fields,
      route: route.description,
      bound: formatTarget(dialed.bound),
      bytesUp: result.bytesUp,
      bytesDown: result.bytesDown,
      seconds: ((performance.now() - started) / 1000).toFixed(3),
      outcome: result.outcome,
      detail,
    },
  );
}
