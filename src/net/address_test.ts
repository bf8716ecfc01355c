import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import {
  formatHostPort,
  formatIp,
  type IpAddress,
  ipBytes,
  ipFamily,
  maskPrefix,
  normalizeHost,
  parseCidr,
  parseHost,
  parseIp,
  prefixMatch,
  toCidr,
  unmapIPv4,
} from "./address.ts";

/** Text, the family `isIP` of node:net gives it (checked by hand under Deno and Bun), and `normalizeHost`. */
const HOSTS: ReadonlyArray<readonly [text: string, family: 0 | 4 | 6, normal: string]> = [
  ["1.2.3.4", 4, "1.2.3.4"],
  ["0.0.0.0", 4, "0.0.0.0"],
  ["255.255.255.255", 4, "255.255.255.255"],
  // Leading zeros, short and hex forms are names: ipaddr.js's IPv4.parse
  // reads "010" as octal 8, inet_aton might too, and isIP says 0.
  ["010.1.1.1", 0, "010.1.1.1"],
  ["1.2.3.04", 0, "1.2.3.04"],
  ["00001.2.3.4", 0, "00001.2.3.4"],
  ["127.1", 0, "127.1"],
  ["1.2.3", 0, "1.2.3"],
  ["0x7f.0.0.1", 0, "0x7f.0.0.1"],
  ["1.2.3.256", 0, "1.2.3.256"],
  ["1.2.3.4.5", 0, "1.2.3.4.5"],
  [" 1.2.3.4", 0, " 1.2.3.4"],
  ["1.2.3.4\n", 0, "1.2.3.4\n"],
  ["", 0, ""],
  ["example.com", 0, "example.com"],
  ["cafe", 0, "cafe"],
  // IPv4-mapped IPv6, in dotted and hex form, any case.
  ["::ffff:1.2.3.4", 6, "1.2.3.4"],
  ["::FFFF:1.2.3.4", 6, "1.2.3.4"],
  ["::ffff:0102:0304", 6, "1.2.3.4"],
  ["0:0:0:0:0:ffff:102:304", 6, "1.2.3.4"],
  ["::ffff:010.1.1.1", 0, "::ffff:010.1.1.1"],
  ["::ffff:0x7f.0.0.1", 0, "::ffff:0x7f.0.0.1"],
  ["::ffff:256.1.1.1", 0, "::ffff:256.1.1.1"],
  // IPv4-compatible (deprecated) is not mapped: inet_pton's reading, not ipaddr.js's.
  ["::1.2.3.4", 6, "::102:304"],
  ["1:2:3:4:5:6:1.2.3.4", 6, "1:2:3:4:5:6:102:304"],
  ["1:2:3:4:5:6:7:1.2.3.4", 0, "1:2:3:4:5:6:7:1.2.3.4"],
  // Canonical (RFC 5952) text.
  ["::1", 6, "::1"],
  ["::", 6, "::"],
  ["1::", 6, "1::"],
  ["2001:DB8::1", 6, "2001:db8::1"],
  ["2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1"],
  ["0000:0000:0000:0000:0000:0000:0000:0001", 6, "::1"],
  ["1:2:3:4:5:6:7::", 6, "1:2:3:4:5:6:7:0"],
  ["00000::1", 0, "00000::1"],
  ["::00001", 0, "::00001"],
  ["1:2:3:4:5:6:7:8:9", 0, "1:2:3:4:5:6:7:8:9"],
  [":::1", 0, ":::1"],
  ["1::2::3", 0, "1::2::3"],
  // Zones are kept as written; the address part is normalised.
  ["fe80::1%eth0", 6, "fe80::1%eth0"],
  ["FE80::1%ETH0", 6, "fe80::1%ETH0"],
  ["fe80::1%eth0.100", 6, "fe80::1%eth0.100"],
  ["fe80::1%en-1", 6, "fe80::1%en-1"],
  ["fe80::1%25", 6, "fe80::1%25"],
  ["::ffff:1.2.3.4%eth0", 6, "1.2.3.4"],
  ["fe80::1%", 0, "fe80::1%"],
  ["fe80::1%e\u00e9", 0, "fe80::1%e\u00e9"],
  ["1.2.3.4%eth0", 0, "1.2.3.4%eth0"],
  // Brackets: not an address, but normalizeHost strips them from IPv6.
  ["[::1]", 0, "::1"],
  ["[::FFFF:127.0.0.1]", 0, "127.0.0.1"],
  ["[1.2.3.4]", 0, "[1.2.3.4]"],
  ["[example.com]", 0, "[example.com]"],
  ["[::1", 0, "[::1"],
];

describe("ipFamily and normalizeHost", () => {
  for (const [text, family, normal] of HOSTS) {
    test(`${JSON.stringify(text)}: family ${family}, normalised ${JSON.stringify(normal)}`, () => {
      assert.equal(ipFamily(text), family);
      assert.equal(normalizeHost(text), normal);
    });
  }
});

describe("parseIp", () => {
  test("gives the value as an integer and keeps the zone", () => {
    assert.deepEqual(parseIp("192.0.2.1"), { family: 4, value: 0xc0000201n });
    assert.deepEqual(parseIp("::ffff:1.2.3.4"), { family: 6, value: 0xffff01020304n });
    assert.deepEqual(parseIp("::ffff:0102:0304"), parseIp("::ffff:1.2.3.4"));
    assert.deepEqual(parseIp("::1.2.3.4"), { family: 6, value: 0x01020304n });
    assert.deepEqual(parseIp("fe80::1%eth0"), { family: 6, value: (0xfe80n << 112n) | 1n, zone: "eth0" });
    assert.deepEqual(parseIp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), { family: 6, value: (1n << 128n) - 1n });
  });
});

describe("parseHost", () => {
  test("strips brackets from IPv6 only and unmaps IPv4-mapped addresses", () => {
    assert.deepEqual(parseHost("[2001:db8::1]"), parseIp("2001:db8::1"));
    assert.deepEqual(parseHost("::ffff:192.0.2.1"), { family: 4, value: 0xc0000201n });
    assert.deepEqual(parseHost("[::ffff:c000:201]"), { family: 4, value: 0xc0000201n });
    assert.deepEqual(parseHost("::192.0.2.1"), { family: 6, value: 0xc0000201n });
    assert.equal(parseHost("[192.0.2.1]"), null);
    assert.equal(parseHost("[[::1]]"), null);
    assert.equal(parseHost("example.com"), null);
  });
});

describe("unmapIPv4", () => {
  test("turns ::ffff:a.b.c.d into a.b.c.d and leaves the rest alone", () => {
    const v6 = (text: string) => parseIp(text) as IpAddress;
    assert.deepEqual(unmapIPv4(v6("::ffff:0.0.0.0")), { family: 4, value: 0n });
    assert.deepEqual(unmapIPv4(v6("::ffff:255.255.255.255")), { family: 4, value: 0xffffffffn });
    for (
      const text of [
        "::1.2.3.4",
        "::fffe:1.2.3.4",
        "1::ffff:1.2.3.4",
        "64:ff9b::1.2.3.4",
        "::ffff:0:1.2.3.4",
        "1.2.3.4",
      ]
    ) {
      assert.deepEqual(unmapIPv4(v6(text)), v6(text), text);
    }
  });
});

describe("formatIp and ipBytes", () => {
  test("formats IPv6 in RFC 5952 form with its zone", () => {
    assert.equal(formatIp({ family: 6, value: 0n }), "::");
    assert.equal(formatIp({ family: 6, value: 0x20010db8000000000001000000000001n }), "2001:db8::1:0:0:1");
    assert.equal(formatIp({ family: 6, value: 0xffff01020304n }), "::ffff:102:304");
    assert.equal(formatIp({ family: 6, value: 1n, zone: "lo" }), "::1%lo");
    assert.equal(formatIp({ family: 4, value: 0x7f000001n }), "127.0.0.1");
  });

  test("gives 4 or 16 bytes in network order", () => {
    assert.deepEqual(ipBytes(parseIp("1.2.3.4") as IpAddress), new Uint8Array([1, 2, 3, 4]));
    assert.deepEqual(
      ipBytes(parseIp("2001:db8::ff%eth0") as IpAddress),
      new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]),
    );
  });
});

describe("parseCidr, toCidr and prefixMatch", () => {
  const cidr = (text: string) => {
    const parsed = parseCidr(text);
    assert.ok(parsed !== null, text);
    return `${formatIp(parsed.network)}/${parsed.prefix}`;
  };
  const inside = (prefix: string, address: string) =>
    prefixMatch(parseCidr(prefix) as NonNullable<ReturnType<typeof parseCidr>>, parseIp(address) as IpAddress);

  test("clears host bits and defaults to a single address", () => {
    assert.equal(cidr("10.1.2.3/8"), "10.0.0.0/8");
    assert.equal(cidr("10.1.2.3"), "10.1.2.3/32");
    assert.equal(cidr("10.1.2.3/0"), "0.0.0.0/0");
    assert.equal(cidr("2001:db8::1/32"), "2001:db8::/32");
    assert.equal(cidr("[2001:db8::1]/64"), "2001:db8::/64");
    assert.equal(cidr("2001:db8::1"), "2001:db8::1/128");
    assert.equal(cidr("::ffff:10.0.0.0/104"), "::ffff:a00:0/104");
  });

  test("rejects bad lengths, zones and bracketed IPv4", () => {
    for (
      const text of [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/255.0.0.0",
        "fe80::/10%eth0",
        "fe80::1%eth0/64",
        "[10.0.0.0]/8",
        "010.0.0.0/8",
        "example.com/8",
        "/8",
      ]
    ) {
      assert.equal(parseCidr(text), null, text);
    }
  });

  test("matches at the edges: /0, /32, /128 and mixed families", () => {
    assert.equal(inside("0.0.0.0/0", "255.255.255.255"), true);
    assert.equal(inside("0.0.0.0/0", "::ffff:1.2.3.4"), false);
    assert.equal(inside("::/0", "1.2.3.4"), false);
    assert.equal(inside("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), true);
    assert.equal(inside("10.0.0.1/32", "10.0.0.1"), true);
    assert.equal(inside("10.0.0.1/32", "10.0.0.0"), false);
    assert.equal(inside("2001:db8::1/128", "2001:db8::1"), true);
    assert.equal(inside("2001:db8::1/128", "2001:db8::"), false);
    assert.equal(inside("10.0.0.0/31", "10.0.0.1"), true);
    assert.equal(inside("10.0.0.0/31", "10.0.0.2"), false);
    assert.equal(inside("::ffff:0:0/96", "1.2.3.4"), false);
    assert.equal(inside("::ffff:0:0/96", "::ffff:1.2.3.4"), true);
    assert.equal(inside("fe80::/10", "fe80::1%eth0"), true);
  });

  test("toCidr rejects prefix lengths outside the family's width", () => {
    const v4 = parseIp("1.2.3.4") as IpAddress;
    const v6 = parseIp("::1") as IpAddress;
    assert.throws(() => toCidr(v4, 33), RangeError);
    assert.throws(() => toCidr(v4, -1), RangeError);
    assert.throws(() => toCidr(v4, 1.5), RangeError);
    assert.throws(() => toCidr(v6, 129), RangeError);
    assert.deepEqual(toCidr(v6, 128), { network: { family: 6, value: 1n }, prefix: 128 });
  });
});

describe("maskPrefix", () => {
  test("reads contiguous netmasks only", () => {
    const mask = (text: string) => maskPrefix(parseIp(text) as IpAddress);
    assert.equal(mask("255.255.255.255"), 32);
    assert.equal(mask("255.255.255.0"), 24);
    assert.equal(mask("255.255.255.254"), 31);
    assert.equal(mask("128.0.0.0"), 1);
    assert.equal(mask("0.0.0.0"), 0);
    assert.equal(mask("255.0.255.0"), null);
    assert.equal(mask("0.0.0.255"), null);
    assert.equal(mask("ffff:ffff::"), 32);
  });
});

describe("formatHostPort", () => {
  test("brackets IPv6 once", () => {
    assert.equal(formatHostPort("127.0.0.1", 80), "127.0.0.1:80");
    assert.equal(formatHostPort("::1", 80), "[::1]:80");
    assert.equal(formatHostPort("fe80::1%eth0", 0), "[fe80::1%eth0]:0");
    assert.equal(formatHostPort("[::1]", 80), "[::1]:80");
    assert.equal(formatHostPort("example.com", 443), "example.com:443");
  });
});

/** 16 bytes, biased towards zero groups so that `::` compression is exercised. */
const v6Bytes = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((groups) => Uint8Array.from(groups.flatMap((group) => [group >>> 8, group & 0xff])));
const v4Bytes = fc.uint8Array({ minLength: 4, maxLength: 4 });

/** The first `prefix` bits of two byte strings are equal: a reference for prefixMatch. */
function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((a[bit >> 3] ?? 0) & mask) !== ((b[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

describe("properties", () => {
  test("every spelling of an IPv6 address (compressed, full, mixed) parses to its bytes, normalised RFC 5952", () => {
    fc.assert(fc.property(v6Bytes, fc.boolean(), (bytes, upper) => {
      const address = ipaddr.fromByteArray([...bytes]) as ipaddr.IPv6;
      const canonical = address.toRFC5952String();
      const fullLength = address.parts.map((part) => part.toString(16).padStart(4, "0")).join(":");
      const mixed = `${address.parts.slice(0, 6).map((part) => part.toString(16)).join(":")}:${
        bytes.slice(12).join(".")
      }`;
      const spellings = [canonical, address.toNormalizedString(), fullLength, mixed]
        .map((text) => upper ? text.toUpperCase() : text);
      for (const text of spellings) {
        assert.equal(ipFamily(text), 6, text);
        assert.deepEqual(ipBytes(parseIp(text) as IpAddress), bytes, text);
        const expected = address.isIPv4MappedAddress() ? address.toIPv4Address().toString() : canonical;
        assert.equal(normalizeHost(text), expected, text);
        assert.equal(normalizeHost(`[${text}]`), expected, text);
      }
    }));
  });

  test("an IPv4 address, plain or mapped in either form, normalises to its dotted quad", () => {
    fc.assert(fc.property(v4Bytes, (bytes) => {
      const dotted = bytes.join(".");
      const hex = `${((bytes[0] ?? 0) << 8 | (bytes[1] ?? 0)).toString(16)}:${
        ((bytes[2] ?? 0) << 8 | (bytes[3] ?? 0)).toString(16)
      }`;
      assert.equal(ipFamily(dotted), 4);
      assert.deepEqual(ipBytes(parseIp(dotted) as IpAddress), bytes);
      for (const text of [dotted, `::ffff:${dotted}`, `::FFFF:${hex}`, `[::ffff:${dotted}]`]) {
        assert.equal(normalizeHost(text), dotted, text);
      }
    }));
  });

  test("normalizeHost is idempotent and formatIp round-trips", () => {
    fc.assert(fc.property(fc.oneof(v4Bytes, v6Bytes), (bytes) => {
      const text = ipaddr.fromByteArray([...bytes]).toString();
      const address = parseIp(text) as IpAddress;
      assert.deepEqual(parseIp(formatIp(address)), address);
      assert.equal(normalizeHost(normalizeHost(text)), normalizeHost(text));
    }));
  });

  test("prefixMatch agrees with a bitwise comparison of the bytes", () => {
    const pair = fc.oneof(
      fc.tuple(v4Bytes, v4Bytes, fc.integer({ min: 0, max: 32 })),
      fc.tuple(v6Bytes, v6Bytes, fc.integer({ min: 0, max: 128 })),
    );
    fc.assert(fc.property(pair, fc.boolean(), ([a, b, prefix], shareStart) => {
      // Half the cases copy a's leading bytes into b so that long prefixes also match sometimes.
      const other = shareStart ? Uint8Array.from(b, (byte, i) => i < prefix >> 3 ? a[i] ?? 0 : byte) : b;
      const network = toCidr(parseIp(ipaddr.fromByteArray([...a]).toString()) as IpAddress, prefix);
      const address = parseIp(ipaddr.fromByteArray([...other]).toString()) as IpAddress;
      assert.equal(prefixMatch(network, address), samePrefix(a, other, prefix));
      assert.equal(prefixMatch(network, parseIp(ipaddr.fromByteArray([...a]).toString()) as IpAddress), true);
    }));
  });
});
