/**
 * One client connection from accept to close, as a pipeline of stages:
 *
 * 1. admit (`admit.ts`): the client's address, before any SOCKS byte
 * 2. negotiate (`negotiate.ts`): SOCKS5 method and sub-negotiation, or the
 *    SOCKS4 USERID, giving an identity
 * 3. request (`request.ts`)
 * 4. authorize (`authorize.ts`): identity, command and target
 * 5. command (`commands.ts`): CONNECT (`connect.ts`), BIND, UDP ASSOCIATE
 * 6. relay (`../io/relay.ts`, run by the command handler)
 * 7. account (`account.ts`): the session record, its log lines, recorders
 *
 * Stages are plain calls; each returns a value or throws a `Refusal` (sent
 * and logged here), a `ProtocolError` or a `NetError` (logged here as a
 * failed handshake). The policy snapshot is read once, when the session starts.
 *
 * @module
 */
import { deadlineQueue } from "../io/deadline_queue.ts";
import type { Policy } from "../policy/policy.ts";
import { type Decoded, needBytes, ProtocolError } from "../protocol/decoded.ts";
import { formatTarget } from "../protocol/target.ts";
import { type Connection, NetError } from "../runtime/types.ts";
import { hexByte } from "../util/hex.ts";
import { SessionAccount } from "./account.ts";
import { admitClient, type ClientInfo } from "./admit.ts";
import type { Authorization } from "./authorize.ts";
import { COMMANDS } from "./commands.ts";
import { Handshake } from "./handshake.ts";
import { type Identity, negotiateSocks4, negotiateSocks5 } from "./negotiate.ts";
import { Refusal } from "./refusal.ts";
import { failureReasonFor } from "./reply_codes.ts";
import { readSocks4Request, readSocks5Request, requestTag, type SessionRequest } from "./request.ts";
import type { SessionContext } from "./session_context.ts";

const UDP_AUTHORIZED: Authorization & { readonly allowed: true } = { allowed: true };

function peekVersion(bytes: Uint8Array): Decoded<number> {
  const first = bytes[0];
  return first === undefined ? needBytes(1) : { ok: true, value: first, size: 0 };
}

type Allowed = Authorization & { readonly allowed: true };

/** A failed lookup of the rules (a name that does not resolve...) as a `Refusal` with its reply. */
function lookupRefusal(request: SessionRequest, error: unknown): Refusal {
  const reason = failureReasonFor(error);
  return new Refusal(
    requestTag(request),
    "failed",
    `${formatTarget(request.target)}: cannot check the rules: ${reason}: ${(error as Error).message}`,
    request.responder.fail(reason),
  );
}

/** The authorizer's answer, or a `Refusal` when it refused. */
function allowedOrRefused(request: SessionRequest, authorization: Authorization): Allowed {
  if (authorization.allowed) return authorization;
  throw new Refusal(
    requestTag(request),
    "not_allowed",
    `${formatTarget(request.target)}: not allowed by ${authorization.reason}`,
    request.responder.fail("not_allowed"),
  );
}

/**
 * Stage 4: the policy's authorizer; a refusal (or a failed lookup) becomes a
 * `Refusal` with its reply. A plain value when the authorizer answers at
 * once (no promise on the common path). UDP ASSOCIATE names the client's
 * own address, not a destination: its handler asks the authorizer about
 * every datagram.
 */
function authorize(
  policy: Policy,
  client: ClientInfo,
  identity: Identity,
  request: SessionRequest,
): Allowed | Promise<Allowed> {
  if (request.command === "udp") return UDP_AUTHORIZED;
  let answer: Authorization | Promise<Authorization>;
  try {
    answer = policy.authorizer.authorize({ client, identity, request });
  } catch (error) {
    throw lookupRefusal(request, error);
  }
  if (!(answer instanceof Promise)) return allowedOrRefused(request, answer);
  return answer.then(
    (authorization) => allowedOrRefused(request, authorization),
    (error: unknown) => {
      throw lookupRefusal(request, error);
    },
  );
}

/** Serves one accepted client connection. Resolves when it is closed; never throws. */
export async function serveSession(connection: Connection, context: SessionContext): Promise<void> {
  const { scope, policy } = context;
  const handshake = new Handshake(connection, deadlineQueue(scope.settings.handshakeTimeoutMs), context.shutdown);
  const account = new SessionAccount(scope.logger, scope.recorders, context.id, connection.remote);
  let version = 0;
  /** What the admitters hold for this client (a `--max-per-client` slot): given back when the session ends. */
  let release: (() => void) | undefined;
  try {
    // 1. admit
    // The local address is read only by what needs it (a system call on Bun).
    const peer: ClientInfo = {
      address: connection.remote,
      get local() {
        return connection.local;
      },
    };
    let admission = scope.admitters.length === 0 && policy.admitters.length === 0
      ? { admitted: true as const, client: peer }
      : admitClient(scope.admitters, policy.admitters, peer, handshake);
    if (admission instanceof Promise) admission = await admission;
    if (admission.admitted) release = admission.release;
    const client: ClientInfo = admission.client;
    account.setClient(client.address, scope.labelClient(client.address));
    if (!admission.admitted) {
      account.denied(admission.outcome, admission.reason, admission.level);
      return;
    }
    version = await handshake.read(peekVersion);
    if (version !== 5 && version !== 4) {
      throw new ProtocolError(`Cannot serve client: first byte ${hexByte(version)} is not SOCKS4 or SOCKS5`);
    }
    // 2. negotiate (SOCKS5) and 3. request; SOCKS4 carries its identity in the request
    let identity: Identity | undefined;
    let request: SessionRequest;
    if (version === 5) {
      identity = await negotiateSocks5(handshake, client, policy.negotiation);
      account.authenticated(identity.method);
      request = await readSocks5Request(handshake);
      account.setRequest(request, identity.user);
    } else {
      request = await readSocks4Request(handshake);
      account.setRequest(request, request.userId);
      identity = negotiateSocks4(request, policy.negotiation);
      account.authenticated(identity.method);
    }
    // 4. authorize
    const answer = authorize(policy, client, identity, request);
    const authorization = answer instanceof Promise ? await answer : answer;
    // 5. command (it relays, 6, and accounts, 7)
    await COMMANDS[request.command]({
      connection,
      handshake,
      client,
      identity,
      request,
      authorization,
      context,
      account,
    });
  } catch (error) {
    if (error instanceof Refusal) {
      handshake.finish();
      account.refused(error.tag, error.outcome, error.message, error.level);
      await handshake.refuse(error.reply);
      return;
    }
    if (error instanceof ProtocolError || error instanceof NetError) {
      const quiet = error instanceof NetError && error.code === "closed" && handshake.inbox.buffered === 0 &&
        version === 0;
      account.handshakeFailed(error, quiet);
    } else {
      account.internalError(error);
    }
    await handshake.refuse();
  } finally {
    handshake.finish();
    connection.close();
    release?.();
  }
}
