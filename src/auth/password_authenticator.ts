/**
 * SOCKS5 method 0x02, username/password (RFC 1929), on the server side.
 *
 * After the method selection the client sends `01 ULEN UNAME PLEN PASSWD`;
 * the server answers `01 00` and goes on, or `01 01` and closes. Here:
 *
 * 1. The request is read through the handshake (its timeout applies; bytes
 *    may come one at a time). A malformed request (VER other than 1, ULEN or
 *    PLEN 0, a field that is not UTF-8) gets `01 01` and the connection is
 *    closed; the session logs it as a failed handshake.
 * 2. The client's address must not be throttled (`throttle.ts`); if it is,
 *    the login is refused without a password check.
 * 3. The verifier decides. Success: `01 00`, and the identity's user is the
 *    verified name. Failure: after `failureDelayMs`, a `Refusal` whose reply
 *    is `01 01`, logged as `CLIENT 5-U/P_AUTH: denied for 'USER': REASON`.
 *
 * The password is never logged; the user name is quoted with control and
 * non-ASCII characters escaped.
 *
 * @module
 */
import { decodeUserPassRequest, encodeUserPassReply } from "../protocol/socks5_auth.ts";
import { SOCKS5_METHOD } from "../protocol/socks5.ts";
import type { ClientInfo } from "../server/admit.ts";
import type { Handshake } from "../server/handshake.ts";
import type { Identity, Socks5Authenticator } from "../server/negotiate.ts";
import { Refusal } from "../server/refusal.ts";
import { LoginThrottle } from "./throttle.ts";
import type { PasswordVerifier, VerifyFailure } from "./verifier.ts";

/** The tag of this stage's log lines (srelay logs `5-U/P_AUTH for USER ...`). */
export const PASSWORD_AUTH_TAG = "5-U/P_AUTH";

/** Options of `createPasswordAuthenticator`. */
export interface PasswordAuthenticatorOptions {
  readonly verifier: PasswordVerifier;
  /** Failure counting per client address; `null` turns it off. Default: a `LoginThrottle` with its defaults. */
  readonly throttle?: LoginThrottle | null;
  /** Wait before a failed login gets its `01 01`. Default 1000 ms. */
  readonly failureDelayMs?: number;
}

/** The session outcome logged for each failure reason. */
export const FAILURE_OUTCOME: Readonly<Record<VerifyFailure, string>> = {
  unknown_user: "auth_failed",
  wrong_password: "auth_failed",
  locked: "auth_failed",
  expired: "auth_failed",
  unavailable: "auth_unavailable",
  busy: "auth_unavailable",
};

const REASON_TEXT: Readonly<Record<VerifyFailure, string>> = {
  unknown_user: "unknown user",
  wrong_password: "wrong password",
  locked: "account locked",
  expired: "account expired",
  unavailable: "user database unavailable",
  busy: "too many logins being checked",
};

/**
 * A user name as it appears in log lines: single-quoted, with `'`, `\`,
 * control characters and everything outside printable ASCII escaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(quoteUser("bob"), "'bob'");
 * assert.equal(quoteUser("a\nb\u00e9"), "'a\\x0ab\\u00e9'");
 * ```
 */
export function quoteUser(user: string): string {
  let out = "";
  for (const char of user) {
    const code = char.codePointAt(0) ?? 0;
    if (char === "'" || char === "\\") out += `\\${char}`;
    else if (code >= 0x20 && code < 0x7f) out += char;
    else if (code < 0x80) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += `\\u{${code.toString(16)}}`;
  }
  return `'${out}'`;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The `Socks5Authenticator` for method 0x02. */
export function createPasswordAuthenticator(options: PasswordAuthenticatorOptions): Socks5Authenticator {
  const { verifier } = options;
  const throttle = options.throttle === undefined ? new LoginThrottle() : options.throttle;
  const failureDelayMs = options.failureDelayMs ?? 1000;
  const failureReply = () => encodeUserPassReply(false);
  return {
    method: SOCKS5_METHOD.USERNAME_PASSWORD,
    async authenticate(handshake: Handshake, client: ClientInfo): Promise<Identity> {
      const { username, password } = await handshake.read(decodeUserPassRequest, failureReply);
      const host = client.address.host;
      let decision = throttle?.begin(host);
      // Too many of this address's logins are being checked: wait for one to end.
      while (decision !== undefined && !decision.allowed && decision.reason === "pending") {
        await throttle?.turn(host, handshake.signal);
        if (handshake.signal.aborted) throw handshake.signal.reason;
        decision = throttle?.begin(host);
      }
      if (decision !== undefined && !decision.allowed) {
        // Answered as late as a wrong password, so a blocked guesser that retries gains no speed.
        await pause(failureDelayMs, handshake.signal);
        throw new Refusal(
          PASSWORD_AUTH_TAG,
          "auth_throttled",
          `denied for ${quoteUser(username)}: too many failed logins from ${decision.key}, refused for ${
            Math.ceil(decision.retryAfterMs / 1000)
          } s`,
          failureReply(),
          throttle?.noteRefusal(decision.key) === false ? "debug" : "warn",
        );
      }
      const ticket = decision?.ticket;
      let result;
      try {
        result = await verifier.verify(username, password);
      } catch (error) {
        ticket?.cancel();
        throw error;
      }
      if (result.ok) {
        ticket?.succeed();
        handshake.connection.write(encodeUserPassReply(true));
        return { user: result.user, method: "password" };
      }
      if (result.reason === "busy" || result.reason === "unavailable") ticket?.cancel();
      else ticket?.fail();
      await pause(failureDelayMs, handshake.signal);
      const detail = result.detail === undefined ? "" : ` (${result.detail})`;
      throw new Refusal(
        PASSWORD_AUTH_TAG,
        FAILURE_OUTCOME[result.reason],
        `denied for ${quoteUser(username)}: ${REASON_TEXT[result.reason]}${detail}`,
        failureReply(),
      );
    },
  };
}
