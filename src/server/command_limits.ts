/**
 * Limits on the two commands that hold resources of their own past the
 * handshake, per client address and in total, for one server process (with
 * `--workers`, each worker counts its own):
 *
 * - **BIND listeners** (`--max-binds`, `--max-binds-per-client`): a slot is
 *   held while a BIND waits for its peer, from the request until the second
 *   reply (or the failure): a listening port on this host, or a next hop's
 *   listener kept open on our behalf. Once the peer is in, the session is a
 *   relay like CONNECT's, bounded by `-m` and `--max-per-client`.
 * - **UDP associations** (`--max-udp`, `--max-udp-per-client`): a slot is
 *   held for the whole association (a relay socket, outbound sockets and
 *   next-hop associations).
 *
 * A request over a limit is refused with REP 01 general failure (SOCKS4: CD
 * 91), not REP 02: the rules allow it, the server is only busy, and the same
 * request succeeds once a slot is free. Its log line names the limit and the
 * option that sets it. The client key is `clientKey` (`--max-per-client`'s):
 * the address after the PROXY header, IPv4-mapped IPv6 as IPv4. 0 means no
 * limit.
 *
 * @module
 */
import { clientKey } from "./client_limit.ts";
import { Refusal } from "./refusal.ts";
import { type Command, requestTag, type SessionRequest } from "./request.ts";

/** The commands with limits of their own. */
export type LimitedCommand = Exclude<Command, "connect">;

/** One command's limits; 0 = no limit. */
export interface CommandLimit {
  readonly perClient: number;
  readonly total: number;
}

/** The limits of both commands. */
export type CommandLimits = Readonly<Record<LimitedCommand, CommandLimit>>;

/** The defaults: 32 per client address and 1,024 in all, for each command. */
export const DEFAULT_COMMAND_LIMITS: CommandLimits = {
  bind: { perClient: 32, total: 1024 },
  udp: { perClient: 32, total: 1024 },
};

/** The refusal outcome in log lines and metrics, per command. */
export const OVER_LIMIT_OUTCOME: Readonly<Record<LimitedCommand, string>> = {
  bind: "too_many_binds",
  udp: "too_many_associations",
};

/** How log lines name what each command holds, and the options that set the limits. */
const WORDING: Readonly<Record<LimitedCommand, { what: string; total: string; perClient: string }>> = {
  bind: { what: "BIND listeners", total: "--max-binds", perClient: "--max-binds-per-client" },
  udp: { what: "UDP associations", total: "--max-udp", perClient: "--max-udp-per-client" },
};

/** Counts of one command: in all, and per client key. */
class Counter {
  total = 0;
  readonly byClient = new Map<string, number>();
}

/**
 * The slots of one server: `take` gives one (or refuses), the returned
 * function gives it back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Refusal } from "./refusal.ts";
 * import { SOCKS5_RESPONDER } from "./responder.ts";
 * const slots = new CommandSlots({ bind: { perClient: 1, total: 2 }, udp: { perClient: 0, total: 0 } });
 * const request = { version: "5" as const, command: "bind" as const, responder: SOCKS5_RESPONDER };
 * const release = slots.take("bind", "192.0.2.7", request);
 * assert.throws(() => slots.take("bind", "192.0.2.7", request), (error: Refusal) => error.outcome === "too_many_binds");
 * slots.take("bind", "192.0.2.8", request); // another client: 2 in all
 * assert.throws(() => slots.take("bind", "192.0.2.9", request), /2 BIND listeners already open in all \(--max-binds 2\)/);
 * release();
 * slots.take("bind", "192.0.2.7", request); // free again
 * ```
 */
export class CommandSlots {
  readonly #limits: CommandLimits;
  readonly #counters: Record<LimitedCommand, Counter> = { bind: new Counter(), udp: new Counter() };

  constructor(limits: CommandLimits = DEFAULT_COMMAND_LIMITS) {
    this.#limits = limits;
  }

  /**
   * Takes a slot of `command` for the client at `host`; returns the
   * function that gives it back (idempotent). Throws a `Refusal` of
   * `request` (REP 01 / CD 5B, a line naming the limit) when the client or
   * the server is at its limit.
   */
  take(
    command: LimitedCommand,
    host: string,
    request: Pick<SessionRequest, "version" | "command" | "responder">,
  ): () => void {
    const limit = this.#limits[command];
    const counter = this.#counters[command];
    const key = clientKey(host);
    const held = counter.byClient.get(key) ?? 0;
    const wording = WORDING[command];
    let refusal: string | null = null;
    if (limit.perClient > 0 && held >= limit.perClient) {
      refusal = `${key} already holds ${held} ${wording.what} (${wording.perClient} ${limit.perClient})`;
    } else if (limit.total > 0 && counter.total >= limit.total) {
      refusal = `${counter.total} ${wording.what} already open in all (${wording.total} ${limit.total})`;
    }
    if (refusal !== null) {
      throw new Refusal(
        requestTag(request),
        OVER_LIMIT_OUTCOME[command],
        refusal,
        request.responder.fail("general_failure"),
      );
    }
    counter.total++;
    counter.byClient.set(key, held + 1);
    let taken = true;
    return () => {
      if (!taken) return;
      taken = false;
      counter.total--;
      const left = (counter.byClient.get(key) ?? 1) - 1;
      if (left <= 0) counter.byClient.delete(key);
      else counter.byClient.set(key, left);
    };
  }
}
