/**
 * Stage 4, authorize: may this identity run this command toward this
 * target? Destination rules plug in here; until they exist every request is
 * allowed. A refusal gets "not allowed" (REP 02, CD 0x5B).
 *
 * @module
 */
import type { ClientInfo } from "./admit.ts";
import type { Identity } from "./negotiate.ts";
import type { SessionRequest } from "./request.ts";

/** What the authorize stage decides on. */
export interface AuthorizeQuestion {
  readonly client: ClientInfo;
  readonly identity: Identity;
  readonly request: SessionRequest;
}

/**
 * The authorize stage's answer; `reason` names the rule (`file:line`) that
 * refused. For a domain target the authorizer may have resolved the name and
 * checked every address: `addresses` are then the ones that passed, and the
 * only ones the dialer may use.
 */
export type Authorization =
  | { readonly allowed: true; readonly addresses?: readonly string[] }
  | { readonly allowed: false; readonly reason: string };

/** Decides whether a request may proceed. */
export interface Authorizer {
  authorize(question: AuthorizeQuestion): Authorization | Promise<Authorization>;
}

const ALLOWED: Authorization = { allowed: true };

/** Allows everything (no destination rules). */
export const ALLOW_ALL: Authorizer = { authorize: () => ALLOWED };
