/**
 * Stage 1, admit: who the client is, decided from its address before any
 * SOCKS byte is read. Admitters run in order (PROXY protocol first, which
 * may replace the address, then tcp_wrappers and per-client limits); the
 * first refusal closes the connection at once.
 *
 * @module
 */
import type { NetAddress } from "../runtime/types.ts";
import type { Handshake } from "./handshake.ts";

/** The client as every later stage sees it. */
export interface ClientInfo {
  /** The client's address: the peer's, or the one a trusted PROXY header carries. */
  readonly address: NetAddress;
  /** The address the client reached us on. */
  readonly local: NetAddress;
}

/** An admitter's answer. */
export type AdmitDecision =
  | { readonly admitted: true; readonly client: ClientInfo }
  | { readonly admitted: false; readonly outcome: string; readonly reason: string };

/** One check of the admit stage. */
export interface Admitter {
  /**
   * Admits the client (possibly with a different `ClientInfo`) or refuses it.
   * May read from the handshake (a PROXY protocol header comes first).
   */
  admit(client: ClientInfo, handshake: Handshake): AdmitDecision | Promise<AdmitDecision>;
}

/** What the admit stage decided, with the client as the last admitter to admit it saw it. */
export type AdmitOutcome =
  | { readonly admitted: true; readonly client: ClientInfo }
  | { readonly admitted: false; readonly client: ClientInfo; readonly outcome: string; readonly reason: string };

/**
 * Runs `first` then `second` in order; resolves to the first refusal or to
 * the last admitted `ClientInfo`. A refusal carries the client as admitted
 * so far (the address a PROXY header gave), which is what its log line names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const client = { address: { host: "192.0.2.7", port: 40000, family: 4 as const },
 *   local: { host: "192.0.2.1", port: 1080, family: 4 as const } };
 * const deny = { admit: () => ({ admitted: false as const, outcome: "denied", reason: "test" }) };
 * const decision = await admitClient([], [deny], client, null as never);
 * assert.equal(decision.admitted, false);
 * ```
 */
export function admitClient(
  first: readonly Admitter[],
  second: readonly Admitter[],
  client: ClientInfo,
  handshake: Handshake,
): AdmitOutcome | Promise<AdmitOutcome> {
  return admitFrom([...first, ...second], 0, client, handshake);
}

/**
 * Runs `admitters` from `index` on; stays synchronous while they answer
 * synchronously (address-only tcp_wrappers rules), so the common case costs
 * no promise per connection.
 */
function admitFrom(
  admitters: readonly Admitter[],
  index: number,
  client: ClientInfo,
  handshake: Handshake,
): AdmitOutcome | Promise<AdmitOutcome> {
  let current = client;
  for (let i = index; i < admitters.length; i++) {
    const decision = (admitters[i] as Admitter).admit(current, handshake);
    if (decision instanceof Promise) {
      const from = current;
      return decision.then((settled) =>
        settled.admitted ? admitFrom(admitters, i + 1, settled.client, handshake) : { ...settled, client: from }
      );
    }
    if (!decision.admitted) return { ...decision, client: current };
    current = decision.client;
  }
  return { admitted: true, client: current };
}
