/**
 * CONNECT, shared by SOCKS4/4a and SOCKS5: choose the route, dial, answer
 * the client, relay, and account for the session.
 *
 * @module
 */
import { relay } from "../io/relay.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { type Cancellation, NetError } from "../runtime/types.ts";
import type { DialResult } from "../upstream/dialer.ts";
import type { CommandSession } from "./commands.ts";
import { failureReasonFor } from "./reply_codes.ts";
import type { RouteChoice } from "./router.ts";

/**
 * Resolves or rejects as `promise` does, or rejects with a `NetError` of code
 * `aborted` as soon as `signal` aborts (a route lookup that waits on DNS must
 * not hold up the end of the grace period).
 */
function untilAborted<T>(promise: Promise<T>, signal: Cancellation): Promise<T> {
  if (signal.aborted) return Promise.reject(new NetError("aborted", "Server is shutting down"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new NetError("aborted", "Server is shutting down"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The request failed with `error`: closes what was dialled, answers with its reply code, logs, closes. */
function fail(session: CommandSession, error: unknown, dialed?: DialResult): Promise<void> {
  dialed?.connection.close();
  session.handshake.finish();
  const reason = failureReasonFor(error);
  session.account.failed(reason, error);
  return sendAndClose(session.connection, session.request.responder.fail(reason), session.context.shutdown);
}

/** Serves one CONNECT request until the session ends. Never throws. */
export async function serveConnect(session: CommandSession): Promise<void> {
  const { connection: client, handshake, request, context, account, identity, authorization } = session;
  const { responder } = request;
  let route: RouteChoice;
  try {
    const chosen = context.policy.router.choose({
      target: request.target,
      command: "connect",
      client: session.client.address,
    });
    route = chosen instanceof Promise ? await untilAborted(chosen, context.shutdown) : chosen;
  } catch (error) {
    return fail(session, error);
  }
  account.requested(route.description);
  const { settings } = context.scope;
  const localHost = settings.sameInterface ? client.local.host : settings.sourceAddress ?? undefined;
  let dialed: DialResult;
  try {
    dialed = await route.dialer.dial(request.target, {
      signal: context.shutdown,
      userId: identity.user,
      ...(localHost === undefined ? {} : { localHost }),
      ...(authorization.addresses === undefined ? {} : { addresses: authorization.addresses }),
    });
  } catch (error) {
    return fail(session, error);
  }
  account.connected();
  handshake.finish();
  if (client.closed) {
    dialed.connection.close();
    account.clientGone();
    return;
  }
  let reply: Uint8Array;
  try {
    reply = responder.succeed(dialed.bound);
  } catch (error) {
    return fail(session, error, dialed);
  }
  client.write(reply);
  const { inbox } = handshake;
  const result = await relay(client, dialed.connection, {
    idleTimeoutMs: settings.idleTimeoutMs,
    finWaitMs: settings.finWaitMs,
    clientRest: inbox.takeRest(),
    ...(inbox.ended ? { clientEnded: true } : {}),
    targetRest: dialed.rest,
    ...(dialed.ended ? { targetEnded: true } : {}),
    signal: context.shutdown,
  });
  account.finished(dialed.bound, result);
}
