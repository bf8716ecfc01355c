import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ProtocolError, type ProtocolErrorReply } from "./decoded.ts";
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram, type Socks5UdpDatagram } from "./socks5_udp.ts";
import { targetArbitrary } from "../../tests/vectors/arbitraries.ts";
import { assertHex, fromHex } from "../../tests/vectors/codec_check.ts";

interface DatagramVector {
  name: string;
  hex: string;
  /** Length of RSV FRAG ATYP DST.ADDR DST.PORT. */
  header: number;
  value: Socks5UdpDatagram;
  decodeOnly?: boolean;
}

const VECTORS: DatagramVector[] = [
  {
    name: "RFC 1928 §7 datagram to an IPv4 address",
    hex: "0000 00 01 c0000201 0035 61626364",
    header: 10,
    value: {
      fragment: 0,
      target: { kind: "ipv4", host: "192.0.2.1", port: 53 },
      payload: fromHex("61626364"),
    },
  },
  {
    name: "RFC 1928 §7 datagram to an IPv6 address",
    hex: "0000 00 04 20010db8000000000000000000000035 0035 ff",
    header: 22,
    value: {
      fragment: 0,
      target: { kind: "ipv6", host: "2001:db8::35", port: 53 },
      payload: fromHex("ff"),
    },
  },
  {
    name: "RFC 1928 §7 datagram to a domain name",
    hex: "0000 00 03 0b 6578616d706c652e636f6d 0035 0102",
    header: 18,
    value: {
      fragment: 0,
      target: { kind: "domain", host: "example.com", port: 53 },
      payload: fromHex("0102"),
    },
  },
  {
    name: "datagram with an empty payload",
    hex: "0000 00 01 7f000001 1f90",
    header: 10,
    value: {
      fragment: 0,
      target: { kind: "ipv4", host: "127.0.0.1", port: 8080 },
      payload: new Uint8Array(0),
    },
  },
  {
    name: "fragment 1 of a fragmented datagram",
    hex: "0000 01 01 7f000001 1f90 aa",
    header: 10,
    value: {
      fragment: 1,
      target: { kind: "ipv4", host: "127.0.0.1", port: 8080 },
      payload: fromHex("aa"),
    },
  },
  {
    name: "last fragment (high-order bit set)",
    hex: "0000 82 01 7f000001 1f90 bb",
    header: 10,
    value: {
      fragment: 0x82,
      target: { kind: "ipv4", host: "127.0.0.1", port: 8080 },
      payload: fromHex("bb"),
    },
  },
  {
    name: "datagram with a nonzero RSV (not checked)",
    hex: "ffff 00 01 7f000001 1f90 cc",
    header: 10,
    value: {
      fragment: 0,
      target: { kind: "ipv4", host: "127.0.0.1", port: 8080 },
      payload: fromHex("cc"),
    },
    decodeOnly: true,
  },
];

const MALFORMED: Array<{ name: string; hex: string; reply: ProtocolErrorReply }> = [
  { name: "an empty datagram", hex: "", reply: "general_failure" },
  { name: "a datagram ending in FRAG", hex: "0000 00", reply: "general_failure" },
  {
    name: "a datagram ending inside an IPv4 address",
    hex: "0000 00 01 7f00",
    reply: "general_failure",
  },
  {
    name: "a datagram ending inside the port",
    hex: "0000 00 01 7f000001 1f",
    reply: "general_failure",
  },
  {
    name: "a datagram ending before the domain length",
    hex: "0000 00 03",
    reply: "general_failure",
  },
  {
    name: "a datagram ending inside a domain",
    hex: "0000 00 03 05 6161",
    reply: "general_failure",
  },
  { name: "ATYP 0x02", hex: "0000 00 02 7f000001 1f90 aa", reply: "address_type_not_supported" },
  { name: "an empty domain", hex: "0000 00 03 00 0035 aa", reply: "general_failure" },
];

describe("decodeSocks5UdpDatagram() / encodeSocks5UdpDatagram()", () => {
  for (const vector of VECTORS) {
    const bytes = fromHex(vector.hex);
    test(`decodes ${vector.name}`, () => {
      assert.deepEqual(decodeSocks5UdpDatagram(bytes), vector.value);
    });
    if (!vector.decodeOnly) {
      test(`encodes ${vector.name}`, () => {
        const { target, payload, fragment } = vector.value;
        assertHex(encodeSocks5UdpDatagram(target, payload, fragment), vector.hex);
      });
    }
    test(`rejects every prefix of ${vector.name} that ends inside the header`, () => {
      for (let length = 0; length < vector.header; length++) {
        assert.throws(
          () => decodeSocks5UdpDatagram(bytes.slice(0, length)),
          ProtocolError,
          `prefix of ${length}`,
        );
      }
      const headerOnly = decodeSocks5UdpDatagram(bytes.slice(0, vector.header));
      assert.equal(headerOnly.payload.length, 0);
    });
  }

  for (const vector of MALFORMED) {
    test(`rejects ${vector.name} with ${vector.reply}`, () => {
      assert.throws(() => decodeSocks5UdpDatagram(fromHex(vector.hex)), (error: unknown) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.reply, vector.reply);
        assert.match(error.message, /^Cannot decode SOCKS5 (UDP datagram|address): /);
        return true;
      });
    });
  }
});

describe("decodeSocks5UdpDatagram()", () => {
  test("returns the payload as a view into the datagram", () => {
    const bytes = fromHex("0000 00 01 7f000001 0035 010203");
    const { payload } = decodeSocks5UdpDatagram(bytes);
    assert.equal(payload.buffer, bytes.buffer);
    assert.equal(payload.byteOffset, 10);
    bytes[11] = 0x99;
    assert.equal(payload[1], 0x99);
  });
});

describe("encodeSocks5UdpDatagram()", () => {
  test("uses fragment 0 by default", () => {
    assertHex(
      encodeSocks5UdpDatagram({ kind: "ipv4", host: "10.0.0.1", port: 53 }, fromHex("aa")),
      "0000 00 01 0a000001 0035 aa",
    );
  });

  test("throws RangeError for a fragment outside 0..255", () => {
    const target = { kind: "ipv4", host: "10.0.0.1", port: 53 } as const;
    assert.throws(() => encodeSocks5UdpDatagram(target, new Uint8Array(0), 256), RangeError);
    assert.throws(() => encodeSocks5UdpDatagram(target, new Uint8Array(0), -1), RangeError);
  });

  test("throws RangeError for an unrepresentable target", () => {
    assert.throws(
      () => encodeSocks5UdpDatagram({ kind: "domain", host: "", port: 53 }, new Uint8Array(0)),
      RangeError,
    );
  });
});

describe("SOCKS5 UDP properties", () => {
  const datagramArbitrary = fc.record(
    {
      fragment: fc.integer({ min: 0, max: 0xff }),
      target: targetArbitrary,
      payload: fc.uint8Array({ maxLength: 64 }),
    },
    { noNullPrototype: true },
  );

  test("decodeSocks5UdpDatagram() decodes what encodeSocks5UdpDatagram() encodes", () => {
    fc.assert(fc.property(datagramArbitrary, (datagram) => {
      const bytes = encodeSocks5UdpDatagram(datagram.target, datagram.payload, datagram.fragment);
      assert.deepEqual(decodeSocks5UdpDatagram(bytes), datagram);
    }));
  });

  test("a truncated datagram throws ProtocolError or decodes a shorter payload", () => {
    fc.assert(fc.property(datagramArbitrary, (datagram) => {
      const bytes = encodeSocks5UdpDatagram(datagram.target, datagram.payload, datagram.fragment);
      const header = bytes.length - datagram.payload.length;
      for (let length = 0; length < bytes.length; length++) {
        const prefix = bytes.subarray(0, length);
        if (length < header) {
          assert.throws(() => decodeSocks5UdpDatagram(prefix), ProtocolError);
        } else {
          assert.equal(decodeSocks5UdpDatagram(prefix).payload.length, length - header);
        }
      }
    }));
  });
});
