/**
 * The safe default of exposed listeners: destinations on the proxy host
 * itself. When a listener is reachable from other hosts and no
 * authentication is required, a SOCKS server must not become a way into
 * services that listen on loopback only, nor into the cloud metadata
 * service.
 *
 * Internal destinations are loopback (127.0.0.0/8, ::1), unspecified
 * addresses, which the kernel sends to this host (0.0.0.0/8, ::),
 * link-local addresses (169.254.0.0/16, which holds 169.254.169.254, and
 * fe80::/10), the IPv6 metadata address fd00:ec2::254, and every address of
 * this host's interfaces. IPv4-mapped IPv6 forms (`::ffff:127.0.0.1`) are
 * read as IPv4.
 *
 * @module
 */
import { networkInterfaces } from "node:os";
import { type Cidr, parseCidr, parseHost, prefixMatch } from "../net/address.ts";

/** How often, at most, the interface addresses are read again. */
const INTERFACES_TTL_MS = 1000;

const INTERNAL_NETWORKS: readonly Cidr[] = [
  "127.0.0.0/8",
  "0.0.0.0/8",
  "169.254.0.0/16",
  "::1/128",
  "::/128",
  "fe80::/10",
  "fd00:ec2::254/128",
].map((text) => parseCidr(text) as Cidr);

const LOOPBACK_NETWORKS: readonly Cidr[] = ["127.0.0.0/8", "::1/128"].map((text) => parseCidr(text) as Cidr);

/** Options of `internalTargets`, for tests. */
export interface InternalTargetsOptions {
  /** This host's interface addresses (default: from `networkInterfaces()` of node:os). */
  readonly interfaces?: () => readonly string[];
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * Creates an internal-destination test. The interface addresses are read
 * now (so a failure shows at start-up) and again at most once a second;
 * when reading them fails later, the last list stays in use. A text that is
 * not an IP address is not internal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const internal = internalTargets({ interfaces: () => ["192.0.2.10", "2001:db8::10"] });
 * assert.deepEqual(
 *   ["127.0.0.2", "::ffff:169.254.169.254", "192.0.2.10", "2001:db8::10", "192.0.2.11", "[::1]"].map(internal),
 *   [true, true, true, true, false, true],
 * );
 * ```
 */
export function internalTargets(options: InternalTargetsOptions = {}): (address: string) => boolean {
  const read = options.interfaces ?? interfaceAddresses;
  const now = options.now ?? Date.now;
  let own = ownAddresses(read());
  let readAt = now();
  return (text) => {
    const address = parseHost(text);
    if (address === null) return false;
    if (INTERNAL_NETWORKS.some((cidr) => prefixMatch(cidr, address))) return true;
    const time = now();
    if (time - readAt >= INTERFACES_TTL_MS || time < readAt) {
      readAt = time;
      try {
        own = ownAddresses(read());
      } catch {
        // Keep the previous list: it was good a moment ago, and an empty one would open the host.
      }
    }
    return (address.family === 4 ? own.v4 : own.v6).has(address.value);
  };
}

let shared: ((address: string) => boolean) | undefined;

/**
 * True when `address` is on this host (see the module notes), with this
 * host's interface addresses read from node:os.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isInternalTarget("127.0.0.1"), true);
 * assert.equal(isInternalTarget("169.254.169.254"), true);
 * assert.equal(isInternalTarget("192.0.2.1"), false);
 * ```
 */
export function isInternalTarget(address: string): boolean {
  shared ??= internalTargets();
  return shared(address);
}

/**
 * True when the safe default applies: some listener is not on loopback
 * (a wildcard address counts as exposed, and so does a host that is not an
 * address) and no authentication is required.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(exposed([{ host: "127.0.0.1" }, { host: "::1" }], false), false);
 * assert.equal(exposed([{ host: "127.0.0.1" }, { host: "0.0.0.0" }], false), true);
 * assert.equal(exposed([{ host: "0.0.0.0" }], true), false);
 * ```
 */
export function exposed(listeners: readonly { readonly host: string }[], authRequired: boolean): boolean {
  return !authRequired && listeners.some((listener) => {
    const address = parseHost(listener.host);
    return address === null || !LOOPBACK_NETWORKS.some((cidr) => prefixMatch(cidr, address));
  });
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}

function ownAddresses(texts: readonly string[]): { v4: Set<bigint>; v6: Set<bigint> } {
  const v4 = new Set<bigint>();
  const v6 = new Set<bigint>();
  for (const text of texts) {
    const address = parseHost(text);
    if (address !== null) (address.family === 4 ? v4 : v6).add(address.value);
  }
  return { v4, v6 };
}
