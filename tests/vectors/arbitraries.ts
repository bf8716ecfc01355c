/**
 * fast-check arbitraries for protocol values: ports, IPv4/IPv6/domain
 * targets (hosts in the canonical form the decoders produce).
 *
 * @module
 */
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import type { Target } from "../../src/protocol/target.ts";

/** Characters of generated domain names. */
const DOMAIN_CHARS = [..."abcdefghijklmnopqrstuvwxyz0123456789.-"];

/** A TCP/UDP port, 0..65535. */
export const portArbitrary: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0xffff });

/** An IPv4 target in dotted-quad form. */
export const ipv4TargetArbitrary: fc.Arbitrary<Target> = fc
  .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), portArbitrary)
  .map(([octets, port]) => ({ kind: "ipv4", host: octets.join("."), port }));

/** An IPv6 target in RFC 5952 form, biased towards zero runs. */
export const ipv6TargetArbitrary: fc.Arbitrary<Target> = fc
  .tuple(
    fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
      minLength: 8,
      maxLength: 8,
    }),
    portArbitrary,
  )
  .map(([groups, port]) => {
    const bytes = groups.flatMap((group) => [group >>> 8, group & 0xff]);
    return { kind: "ipv6", host: ipaddr.fromByteArray(bytes).toString(), port };
  });

/** A domain target of 1..255 characters from [a-z0-9.-]. */
export const domainTargetArbitrary: fc.Arbitrary<Target> = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...DOMAIN_CHARS), minLength: 1, maxLength: 255 }),
    portArbitrary,
  )
  .map(([host, port]) => ({ kind: "domain", host, port }));

/** Any target. */
export const targetArbitrary: fc.Arbitrary<Target> = fc.oneof(
  ipv4TargetArbitrary,
  ipv6TargetArbitrary,
  domainTargetArbitrary,
);
