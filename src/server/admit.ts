/**
 * Stage 1, admit: who the client is, decided from its address before any
 * SOCKS byte is read. Admitters run in order (the listener's: PROXY
 * protocol first, which may replace the address, then `--max-per-client`;
 * then the policy's: tcp_wrappers); the first refusal closes the connection
 * at once.
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

/**
 * What an admitted client holds until its session ends (a `--max-per-client`
 * slot): given back exactly once, however the session ends.
 */
export interface AdmitHold {
  readonly release?: () => void;
}

/** A refusal: its outcome, the reason its log line gives, and that line's level (`debug` for a repeat). */
export interface AdmitRefusal {
  readonly admitted: false;
  readonly outcome: string;
  readonly reason: string;
  readonly level?: "warn" | "debug";
}

/** An admitter's answer. */
export type AdmitDecision =
  | { readonly admitted: true; readonly client: ClientInfo } & AdmitHold
  | AdmitRefusal;

/** One check of the admit stage. */
export interface Admitter {
  /**
   * Admits the client (possibly with a different `ClientInfo`) or refuses it.
   * May read from the handshake (a PROXY protocol header comes first).
   */
  admit(client: ClientInfo, handshake: Handshake): AdmitDecision | Promise<AdmitDecision>;
}

/**
 * What the admit stage decided, with the client as the last admitter to
 * admit it saw it. An admitted client's `release`, if any, gives back what
 * every admitter holds for it: the session calls it once it ends.
 */
export type AdmitOutcome =
  | { readonly admitted: true; readonly client: ClientInfo } & AdmitHold
  | AdmitRefusal & { readonly client: ClientInfo };

/**
 * Runs `first` then `second` in order; resolves to the first refusal or to
 * the last admitted `ClientInfo`. A refusal carries the client as admitted
 * so far (the address a PROXY header gave), which is what its log line names.
 * On a refusal or an error, whatever earlier admitters hold is released here;
 * on admission, the outcome's `release` is the caller's to call.
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
  const admitters = first.length === 0 ? second : second.length === 0 ? first : [...first, ...second];
  return admitFrom(admitters, 0, client, handshake);
}

/** One release for both: `second` (the later hold) first, then `first`; no allocation when only one is set. */
function both(first: (() => void) | undefined, second: (() => void) | undefined): (() => void) | undefined {
  if (first === undefined) return second;
  if (second === undefined) return first;
  return () => {
    try {
      second();
    } finally {
      first();
    }
  };
}

/**
 * Runs `admitters` from `index` on; stays synchronous while they answer
 * synchronously (address-only tcp_wrappers rules), so the common case costs
 * no promise per connection. `held` is what earlier admitters hold.
 */
function admitFrom(
  admitters: readonly Admitter[],
  index: number,
  client: ClientInfo,
  handshake: Handshake,
  held?: () => void,
): AdmitOutcome | Promise<AdmitOutcome> {
  let current = client;
  let release = held;
  for (let i = index; i < admitters.length; i++) {
    let decision;
    try {
      decision = (admitters[i] as Admitter).admit(current, handshake);
    } catch (error) {
      release?.();
      throw error;
    }
    if (decision instanceof Promise) {
      const from = current;
      const holding = release;
      return decision.then(
        (settled) => {
          if (settled.admitted) {
            return admitFrom(admitters, i + 1, settled.client, handshake, both(holding, settled.release));
          }
          holding?.();
          return { ...settled, client: from };
        },
        (error) => {
          holding?.();
          throw error;
        },
      );
    }
    if (!decision.admitted) {
      release?.();
      return { ...decision, client: current };
    }
    current = decision.client;
    release = both(release, decision.release);
  }
  return release === undefined ? { admitted: true, client: current } : { admitted: true, client: current, release };
}
