import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "./decoded.ts";
import {
  ATYP,
  decodeSocks5Address,
  encodeSocks5Address,
  socks5AddressLength,
  writeSocks5Address,
} from "./socks5_address.ts";
import type { Target } from "./target.ts";
import { targetArbitrary } from "../../tests/vectors/arbitraries.ts";
import {
  assertHex,
  fromHex,
  type MalformedVector,
  testMalformed,
  testVectors,
  toHex,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

const decodeAt0 = (bytes: Uint8Array) => decodeSocks5Address(bytes, 0);

const VECTORS: Vector<Target>[] = [
  {
    name: "RFC 1928 IPv4 address",
    hex: "01 c0000201 0050",
    value: { kind: "ipv4", host: "192.0.2.1", port: 80 },
  },
  {
    name: "IPv4 0.0.0.0 port 0",
    hex: "01 00000000 0000",
    value: { kind: "ipv4", host: "0.0.0.0", port: 0 },
  },
  {
    name: "IPv4 255.255.255.255 port 65535",
    hex: "01 ffffffff ffff",
    value: { kind: "ipv4", host: "255.255.255.255", port: 65535 },
  },
  {
    name: "RFC 1928 IPv6 address",
    hex: "04 20010db8000000000000000000000001 01bb",
    value: { kind: "ipv6", host: "2001:db8::1", port: 443 },
  },
  {
    name: "IPv6 with two zero runs (RFC 5952 compresses the first longest)",
    hex: "04 20010db8000000000001000000000001 0016",
    value: { kind: "ipv6", host: "2001:db8::1:0:0:1", port: 22 },
  },
  {
    name: "IPv6 unspecified",
    hex: "04 00000000000000000000000000000000 0000",
    value: { kind: "ipv6", host: "::", port: 0 },
  },
  {
    name: "RFC 1928 domain name address",
    hex: "03 0b 6578616d706c652e636f6d 0050",
    value: { kind: "domain", host: "example.com", port: 80 },
  },
  {
    name: "one-character domain",
    hex: "03 01 61 1f90",
    value: { kind: "domain", host: "a", port: 8080 },
  },
  {
    name: "255-character domain",
    hex: `03 ff ${"61".repeat(255)} 0050`,
    value: { kind: "domain", host: "a".repeat(255), port: 80 },
  },
  {
    name: "Latin-1 domain byte",
    hex: "03 02 e961 0050",
    value: { kind: "domain", host: "\u00e9a", port: 80 },
  },
];

const MALFORMED: MalformedVector[] = [
  { name: "ATYP 0x02", hex: "02 c0000201 0050", reply: "address_type_not_supported" },
  { name: "ATYP 0x00", hex: "00", reply: "address_type_not_supported" },
  { name: "ATYP 0x05", hex: "05 00", reply: "address_type_not_supported" },
  { name: "empty domain", hex: "03 00 0050", reply: "general_failure" },
  { name: "domain with NUL", hex: "03 03 61 00 62 0050", reply: "general_failure" },
];

testVectors("decodeSocks5Address() / encodeSocks5Address()", {
  decode: decodeAt0,
  encode: encodeSocks5Address,
  vectors: VECTORS,
});

testMalformed("decodeSocks5Address()", { decode: decodeAt0, vectors: MALFORMED });

describe("decodeSocks5Address()", () => {
  test("counts size from offset and need from the start", () => {
    const bytes = fromHex("05 01 00 03 0b 6578616d706c652e636f6d 0050");
    assert.deepEqual(decodeSocks5Address(bytes, 3), {
      ok: true,
      value: { kind: "domain", host: "example.com", port: 80 },
      size: 15,
    });
    assert.deepEqual(decodeSocks5Address(bytes.subarray(0, 3), 3), { ok: false, need: 4 });
    assert.deepEqual(decodeSocks5Address(bytes.subarray(0, 4), 3), { ok: false, need: 5 });
    assert.deepEqual(decodeSocks5Address(bytes.subarray(0, 5), 3), { ok: false, need: 18 });
  });

  test("returns need 2 for a domain until its length byte arrives", () => {
    assert.deepEqual(decodeSocks5Address(fromHex("03"), 0), { ok: false, need: 2 });
  });

  test("names the address type in hex", () => {
    assert.throws(
      () => decodeSocks5Address(fromHex("02"), 0),
      new ProtocolError(
        "Cannot decode SOCKS5 address: address type 0x02 is unsupported",
        "address_type_not_supported",
      ),
    );
  });
});

describe("encodeSocks5Address()", () => {
  const invalid: Array<[string, Target]> = [
    ["a 256-character domain", { kind: "domain", host: "a".repeat(256), port: 80 }],
    ["an empty domain", { kind: "domain", host: "", port: 80 }],
    ["a domain with NUL", { kind: "domain", host: "a\0b", port: 80 }],
    ["a domain beyond Latin-1", { kind: "domain", host: "b\u00fccher.\u4f8b", port: 80 }],
    ["port 65536", { kind: "ipv4", host: "127.0.0.1", port: 65536 }],
    ["port -1", { kind: "ipv4", host: "127.0.0.1", port: -1 }],
    ["port 1.5", { kind: "domain", host: "a", port: 1.5 }],
    ["IPv4 host 256.0.0.1", { kind: "ipv4", host: "256.0.0.1", port: 80 }],
    ["IPv4 host 1.2.3", { kind: "ipv4", host: "1.2.3", port: 80 }],
    ["IPv4 host that is IPv6", { kind: "ipv4", host: "::1", port: 80 }],
    ["IPv6 host that is IPv4", { kind: "ipv6", host: "127.0.0.1", port: 80 }],
    ["IPv6 host with brackets", { kind: "ipv6", host: "[::1]", port: 80 }],
  ];
  for (const [name, target] of invalid) {
    test(`throws RangeError for ${name}`, () => {
      assert.throws(() => encodeSocks5Address(target), RangeError);
    });
  }

  test("accepts non-canonical IPv6 text", () => {
    assertHex(
      encodeSocks5Address({ kind: "ipv6", host: "2001:DB8:0:0:0:0:0:1", port: 443 }),
      "04 20010db8000000000000000000000001 01bb",
    );
  });

  test("accepts IPv4-mapped IPv6 in dotted form", () => {
    assertHex(
      encodeSocks5Address({ kind: "ipv6", host: "::ffff:192.0.2.1", port: 80 }),
      "04 00000000000000000000ffffc0000201 0050",
    );
  });
});

describe("writeSocks5Address()", () => {
  test("writes at offset and returns the offset past the block", () => {
    const into = new Uint8Array(12).fill(0xee);
    const end = writeSocks5Address({ kind: "ipv4", host: "10.0.0.1", port: 1080 }, into, 3);
    assert.equal(end, 10);
    assert.equal(toHex(into), "ee ee ee 01 0a 00 00 01 04 38 ee ee");
  });

  test("throws RangeError and writes nothing when the block does not fit", () => {
    const into = new Uint8Array(8);
    assert.throws(
      () => writeSocks5Address({ kind: "ipv4", host: "10.0.0.1", port: 1080 }, into, 2),
      RangeError,
    );
    assert.equal(toHex(into), "00 00 00 00 00 00 00 00");
  });

  test("throws RangeError and writes nothing for an invalid host", () => {
    const into = new Uint8Array(8);
    assert.throws(
      () => writeSocks5Address({ kind: "ipv4", host: "example.com", port: 80 }, into, 0),
      RangeError,
    );
    assert.equal(toHex(into), "00 00 00 00 00 00 00 00");
  });
});

describe("socks5AddressLength()", () => {
  test("is 7 for IPv4, 19 for IPv6 and 4 + length for a domain", () => {
    assert.equal(socks5AddressLength({ kind: "ipv4", host: "1.2.3.4", port: 1 }), 7);
    assert.equal(socks5AddressLength({ kind: "ipv6", host: "::1", port: 1 }), 19);
    assert.equal(socks5AddressLength({ kind: "domain", host: "example.com", port: 1 }), 15);
  });

  test("throws RangeError for a domain the encoder rejects", () => {
    assert.throws(() => socks5AddressLength({ kind: "domain", host: "", port: 1 }), RangeError);
  });
});

test("ATYP holds the RFC 1928 values", () => {
  assert.deepEqual(ATYP, { IPV4: 1, DOMAIN: 3, IPV6: 4 });
});

describe("decodeSocks5Address() properties", () => {
  test("decodes what encodeSocks5Address() encodes", () => {
    fc.assert(fc.property(targetArbitrary, (target) => {
      const bytes = encodeSocks5Address(target);
      assert.deepEqual(decodeSocks5Address(bytes, 0), {
        ok: true,
        value: target,
        size: bytes.length,
      });
      assert.equal(bytes.length, socks5AddressLength(target));
    }));
  });

  test("returns need, never throws, for every prefix of a valid encoding", () => {
    fc.assert(fc.property(targetArbitrary, (target) => {
      const bytes = encodeSocks5Address(target);
      for (let length = 0; length < bytes.length; length++) {
        const result = decodeSocks5Address(bytes.subarray(0, length), 0);
        assert.ok(!result.ok && result.need > length && result.need <= bytes.length);
      }
    }));
  });
});
