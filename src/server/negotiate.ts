/**
 * Stage 2, negotiate: who the client says it is. For SOCKS5 the server picks
 * the first method in its own order of preference that the client offers
 * and runs that method's sub-negotiation; for SOCKS4 the identity is the
 * USERID of the request, unverified, and SOCKS4 is refused outright when the
 * policy requires a verified user.
 *
 * @module
 */
import { decodeSocks5Greeting, encodeSocks5MethodSelection, SOCKS5_METHOD } from "../protocol/socks5.ts";
import { hexByte } from "../util/hex.ts";
import type { ClientInfo } from "./admit.ts";
import type { Handshake } from "./handshake.ts";
import { Refusal } from "./refusal.ts";
import type { SessionRequest } from "./request.ts";

/** Who the client is, as far as the server knows. */
export interface Identity {
  /** The user name (RFC 1929, verified) or SOCKS4 USERID (claimed); empty when there is none. */
  readonly user: string;
  /** `none` (SOCKS5 without authentication), `password` (RFC 1929), `userid` (SOCKS4, not verified). */
  readonly method: "none" | "password" | "userid";
}

/** The identity of a client that did not authenticate. */
export const ANONYMOUS: Identity = { user: "", method: "none" };

/** One SOCKS5 authentication method. */
export interface Socks5Authenticator {
  /** The method byte (`0x00` no authentication, `0x02` username/password). */
  readonly method: number;
  /**
   * Runs the method's sub-negotiation once the method selection was sent.
   * Resolves to the identity, or throws a `Refusal` (or a protocol or
   * network error) when the client does not get in.
   */
  authenticate(handshake: Handshake, client: ClientInfo): Identity | Promise<Identity>;
}

/** SOCKS5 method 0x00: no authentication, an anonymous identity. */
export const NO_AUTHENTICATION: Socks5Authenticator = {
  method: SOCKS5_METHOD.NO_AUTH,
  authenticate: () => ANONYMOUS,
};

/** What the policy says about authentication. */
export interface NegotiationPolicy {
  /** SOCKS5 methods in the server's order of preference. */
  readonly socks5: readonly Socks5Authenticator[];
  /** False when SOCKS4 is refused (it cannot carry a password). */
  readonly socks4: boolean;
}

/** The policy of srelay's default, `-a n`: SOCKS5 without authentication, and SOCKS4. */
export const OPEN_NEGOTIATION: NegotiationPolicy = { socks5: [NO_AUTHENTICATION], socks4: true };

/**
 * SOCKS5: reads the greeting, picks a method, sends the selection and runs
 * the sub-negotiation. With no acceptable method the client gets `05 FF`
 * (through a thrown `Refusal`).
 */
export async function negotiateSocks5(
  handshake: Handshake,
  client: ClientInfo,
  policy: NegotiationPolicy,
): Promise<Identity> {
  const greeting = await handshake.read(
    decodeSocks5Greeting,
    () => encodeSocks5MethodSelection(SOCKS5_METHOD.NO_ACCEPTABLE),
  );
  const chosen = policy.socks5.find((authenticator) => greeting.methods.includes(authenticator.method));
  if (chosen === undefined) {
    throw new Refusal(
      "5",
      "no_acceptable_method",
      `no acceptable authentication method (offered ${greeting.methods.map(hexByte).join(",")})`,
      encodeSocks5MethodSelection(SOCKS5_METHOD.NO_ACCEPTABLE),
    );
  }
  handshake.connection.write(encodeSocks5MethodSelection(chosen.method));
  return await chosen.authenticate(handshake, client);
}

/** SOCKS4: the request's USERID is the (unverified) identity, unless SOCKS4 is refused. */
export function negotiateSocks4(request: SessionRequest, policy: NegotiationPolicy): Identity {
  if (!policy.socks4) {
    throw new Refusal(
      request.version,
      "refused",
      "SOCKS4 is refused because user/password authentication is required",
      request.responder.fail("not_allowed"),
    );
  }
  return request.userId === "" ? ANONYMOUS : { user: request.userId, method: "userid" };
}
