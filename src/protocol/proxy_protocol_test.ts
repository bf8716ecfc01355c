// PROXY protocol v1/v2 codec: the spec's examples and layouts, headers
// captured from HAProxy 2.6 (an independent encoder), malformed input, and
// property checks (round trip, byte at a time, arbitrary bytes).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "./decoded.ts";
import {
  crc32c,
  decodeProxyHeader,
  encodeProxyHeader,
  MAX_PROXY_V1_LENGTH,
  MAX_PROXY_V2_LENGTH,
  PROXY_TLV,
  PROXY_V2_SIGNATURE,
  type ProxyEndpoint,
  type ProxyHeader,
  type ProxyTlv,
} from "./proxy_protocol.ts";
import { ipv4TargetArbitrary, ipv6TargetArbitrary } from "../../tests/vectors/arbitraries.ts";
import {
  assertNeedsEveryPrefix,
  fromHex,
  type MalformedVector,
  testMalformed,
  testVectors,
  toHex,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

/** Hex of ASCII text, for v1 lines. */
function ascii(text: string): string {
  return Array.from(text, (char) => char.charCodeAt(0).toString(16).padStart(2, "0")).join("");
}

const SIG = "0d0a0d0a000d0a515549540a";

type Proxied = Extract<ProxyHeader, { command: "proxy" }>;
const FFFF6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

function tcp(
  version: 1 | 2,
  family: 4 | 6,
  source: [string, number],
  destination: [string, number],
  tlvs: ProxyTlv[] = [],
  transport: "stream" | "datagram" = "stream",
): Proxied {
  return {
    version,
    command: "proxy",
    family,
    transport,
    source: { host: source[0], port: source[1] },
    destination: { host: destination[0], port: destination[1] },
    tlvs,
  };
}

function tlv(type: number, hex: string): ProxyTlv {
  return { type, value: fromHex(hex) };
}

const V1_VECTORS: Vector<ProxyHeader>[] = [
  {
    name: "the spec's v1 TCP4 example",
    hex: ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
    value: tcp(1, 4, ["192.168.0.1", 56324], ["192.168.0.11", 443]),
  },
  {
    name: "the spec's longest v1 TCP4 line",
    hex: ascii("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
    value: tcp(1, 4, ["255.255.255.255", 65535], ["255.255.255.255", 65535]),
  },
  {
    name: "the spec's longest v1 TCP6 line (104 bytes)",
    hex: ascii(`PROXY TCP6 ${FFFF6} ${FFFF6} 65535 65535\r\n`),
    value: tcp(1, 6, [FFFF6, 65535], [FFFF6, 65535]),
  },
  {
    name: "v1 TCP6 with compressed addresses and port 0",
    hex: ascii("PROXY TCP6 2001:db8::7 ::1 0 1080\r\n"),
    value: tcp(1, 6, ["2001:db8::7", 0], ["::1", 1080]),
  },
  {
    name: "v1 TCP6 with an IPv4-mapped source (kept as IPv6 here; the admitter unmaps it)",
    hex: ascii("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:192.0.2.1 40000 1080\r\n"),
    value: tcp(1, 6, ["::ffff:c000:207", 40000], ["::ffff:c000:201", 1080]),
    decodeOnly: true,
  },
  {
    name: "v1 TCP6 in upper case and uncompressed (decoded to RFC 5952)",
    hex: ascii("PROXY TCP6 2001:DB8:0:0:0:0:0:7 2001:db8::1 40000 1080\r\n"),
    value: tcp(1, 6, ["2001:db8::7", 40000], ["2001:db8::1", 1080]),
    decodeOnly: true,
  },
  {
    name: "the spec's shortest v1 line, PROXY UNKNOWN",
    hex: ascii("PROXY UNKNOWN\r\n"),
    value: { version: 1, command: "unknown", tlvs: [] },
  },
  {
    name: "the spec's longest v1 line, PROXY UNKNOWN with addresses (107 bytes)",
    hex: ascii(`PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 65535\r\n`),
    value: { version: 1, command: "unknown", tlvs: [] },
    decodeOnly: true,
  },
];

const V2_VECTORS: Vector<ProxyHeader>[] = [
  {
    name: "v2 PROXY TCP over IPv4 (the v1 example's addresses)",
    hex: `${SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb`,
    value: tcp(2, 4, ["192.168.0.1", 56324], ["192.168.0.11", 443]),
  },
  {
    name: "v2 PROXY TCP over IPv6",
    hex: `${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 9c40 0438`,
    value: tcp(2, 6, ["2001:db8::1", 40000], ["2001:db8::2", 1080]),
  },
  {
    name: "v2 PROXY UDP over IPv4",
    hex: `${SIG} 21 12 000c c0000207 c0000201 9c40 0035`,
    value: tcp(2, 4, ["192.0.2.7", 40000], ["192.0.2.1", 53], [], "datagram"),
  },
  {
    name: "v2 PROXY UDP over IPv6",
    hex: `${SIG} 21 22 0024 ${"00".repeat(15)}01 ${"00".repeat(15)}01 0001 0002`,
    value: tcp(2, 6, ["::1", 1], ["::1", 2], [], "datagram"),
  },
  {
    name: "v2 PROXY TCP4 with ALPN, AUTHORITY and an empty NOOP TLV",
    hex: `${SIG} 21 11 0022 c0000207 c0000201 9c40 0438 01 0002 6832 02 000b ${ascii("example.com")} 04 0000`,
    value: tcp(2, 4, ["192.0.2.7", 40000], ["192.0.2.1", 1080], [
      tlv(PROXY_TLV.ALPN, "6832"),
      tlv(PROXY_TLV.AUTHORITY, ascii("example.com")),
      tlv(PROXY_TLV.NOOP, ""),
    ]),
  },
  {
    name: "v2 PROXY TCP4 with an SSL TLV holding sub-TLVs (skipped whole)",
    hex: `${SIG} 21 11 0017 c0000207 c0000201 9c40 0438 20 0008 01 00000000 21 0000`,
    value: tcp(2, 4, ["192.0.2.7", 40000], ["192.0.2.1", 1080], [tlv(PROXY_TLV.SSL, "01 00000000 21 0000")]),
  },
  {
    name: "v2 LOCAL with family UNSPEC (a health check)",
    hex: `${SIG} 20 00 0000`,
    value: { version: 2, command: "local" },
  },
  {
    name: "v2 LOCAL with an IPv4 address block and a TLV (both discarded)",
    hex: `${SIG} 20 11 000f c0000207 c0000201 9c40 0438 04 0000`,
    value: { version: 2, command: "local" },
    decodeOnly: true,
  },
  {
    name: "v2 LOCAL whose length is too short for its family (discarded too)",
    hex: `${SIG} 20 21 0002 0000`,
    value: { version: 2, command: "local" },
    decodeOnly: true,
  },
  {
    name: "v2 PROXY with family UNSPEC",
    hex: `${SIG} 21 00 0000`,
    value: { version: 2, command: "unknown", tlvs: [] },
  },
  {
    name: "v2 PROXY with family UNSPEC and a NOOP TLV",
    hex: `${SIG} 21 00 0005 04 0002 abcd`,
    value: { version: 2, command: "unknown", tlvs: [tlv(PROXY_TLV.NOOP, "abcd")] },
  },
  {
    name: "v2 PROXY over UNIX stream sockets (216 bytes of paths)",
    hex: `${SIG} 21 31 00d8 ${"00".repeat(216)}`,
    value: { version: 2, command: "unknown", tlvs: [] },
    decodeOnly: true,
  },
];

/** Headers HAProxy 2.6.12 (Debian 12) sent to a capturing listener on loopback; the client was 127.0.0.9. */
const HAPROXY_VECTORS: Vector<ProxyHeader>[] = [
  {
    name: "HAProxy send-proxy",
    hex: ascii("PROXY TCP4 127.0.0.9 127.0.0.1 40003 58303\r\n"),
    value: tcp(1, 4, ["127.0.0.9", 40003], ["127.0.0.1", 58303]),
  },
  {
    name: "HAProxy send-proxy health check (check-send-proxy: the check's own addresses)",
    hex: ascii("PROXY TCP4 127.0.0.1 127.0.0.1 50338 58399\r\n"),
    value: tcp(1, 4, ["127.0.0.1", 50338], ["127.0.0.1", 58399]),
  },
  {
    name: "HAProxy send-proxy-v2",
    hex: `${SIG} 2111000c 7f000009 7f000001 9c41 e3bd`,
    value: tcp(2, 4, ["127.0.0.9", 40001], ["127.0.0.1", 58301]),
  },
  {
    name: "HAProxy send-proxy-v2 health check (check-send-proxy: LOCAL)",
    hex: `${SIG} 20000000`,
    value: { version: 2, command: "local" },
  },
  {
    name: "HAProxy send-proxy-v2 proxy-v2-options crc32c,unique-id (empty unique ID)",
    hex: `${SIG} 21110016 7f000009 7f000001 9c42 e3be 030004 79c83f36 050000`,
    value: tcp(2, 4, ["127.0.0.9", 40002], ["127.0.0.1", 58302], [
      tlv(PROXY_TLV.CRC32C, "79c83f36"),
      tlv(PROXY_TLV.UNIQUE_ID, ""),
    ]),
    decodeOnly: true,
  },
  {
    name: "HAProxy send-proxy-v2 proxy-v2-options crc32c,unique-id (unique-id-format srelay-%ci)",
    hex: `${SIG} 21110026 7f000009 7f000001 9c56 e3be 030004 73ba52f3 050010 ${ascii("srelay-127.0.0.9")}`,
    value: tcp(2, 4, ["127.0.0.9", 40022], ["127.0.0.1", 58302], [
      tlv(PROXY_TLV.CRC32C, "73ba52f3"),
      tlv(PROXY_TLV.UNIQUE_ID, ascii("srelay-127.0.0.9")),
    ]),
    decodeOnly: true,
  },
  {
    name: "HAProxy send-proxy-v2 proxy-v2-options crc32c over IPv6",
    hex: `${SIG} 2121002b ${"00".repeat(15)}01 ${"00".repeat(15)}01 9c4a e3c0 030004 fd9d9bc9`,
    value: tcp(2, 6, ["::1", 40010], ["::1", 58304], [tlv(PROXY_TLV.CRC32C, "fd9d9bc9")]),
    decodeOnly: true,
  },
];

/** "PROXY UNKNOWN " (14 bytes), 92 more, CRLF: 108 bytes. */
const LONG_V1 = ascii(`PROXY UNKNOWN ${"x".repeat(MAX_PROXY_V1_LENGTH - 15)}\r\n`);

const MALFORMED: MalformedVector[] = [
  { name: "a SOCKS5 greeting without a header", hex: "05 01 00", reply: "general_failure" },
  { name: "a SOCKS4 request without a header", hex: "04 01 0050 7f000001 00", reply: "general_failure" },
  { name: "an HTTP request", hex: ascii("GET / HTTP/1.1\r\n"), reply: "general_failure" },
  { name: "v1 in lower case", hex: ascii("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), reply: "general_failure" },
  { name: "v1 without the space after PROXY", hex: ascii("PROXYTCP4 1.2.3.4\r\n"), reply: "general_failure" },
  { name: "v1 protocol TCP5", hex: ascii("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), reply: "general_failure" },
  { name: "v1 with a missing port", hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n"), reply: "general_failure" },
  { name: "v1 with an extra field", hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), reply: "general_failure" },
  { name: "v1 with two spaces", hex: ascii("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), reply: "general_failure" },
  { name: "v1 with a trailing space", hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), reply: "general_failure" },
  { name: "v1 TCP4 with IPv6 addresses", hex: ascii("PROXY TCP4 ::1 ::1 1 2\r\n"), reply: "general_failure" },
  { name: "v1 TCP6 with IPv4 addresses", hex: ascii("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), reply: "general_failure" },
  { name: "v1 TCP6 with a zone", hex: ascii("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), reply: "general_failure" },
  {
    name: "v1 with an octal-looking IPv4",
    hex: ascii("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
    reply: "general_failure",
  },
  { name: "v1 with a host name", hex: ascii("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), reply: "general_failure" },
  { name: "v1 with a port of 65536", hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), reply: "general_failure" },
  {
    name: "v1 with a leading zero in a port",
    hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"),
    reply: "general_failure",
  },
  { name: "v1 with a signed port", hex: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), reply: "general_failure" },
  { name: "v1 ending in LF alone", hex: ascii("PROXY UNKNOWN\n"), reply: "general_failure" },
  { name: "v1 with CR not followed by LF", hex: ascii("PROXY UNKNOWN\r\r\n"), reply: "general_failure" },
  {
    name: "v1 with a NUL byte",
    hex: `${ascii("PROXY TCP4 1.2.3.4")} 00 ${ascii(" 5.6.7.8 1 2\r\n")}`,
    reply: "general_failure",
  },
  { name: "v1 with a non-ASCII byte", hex: `${ascii("PROXY UNKNOWN ")} c3a9 0d0a`, reply: "general_failure" },
  { name: "v1 of 108 bytes (over the 107-byte limit)", hex: LONG_V1, reply: "general_failure" },
  { name: "v1 without CRLF in 107 bytes", hex: ascii(`PROXY UNKNOWN ${"x".repeat(120)}`), reply: "general_failure" },
  { name: "v2 with a wrong signature byte", hex: "0d0a0d0a00 0e 0a515549540a 21 11 000c", reply: "general_failure" },
  { name: "v2 version 1", hex: `${SIG} 11 11 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  { name: "v2 version 3", hex: `${SIG} 31 11 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  { name: "v2 command 2", hex: `${SIG} 22 11 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  { name: "v2 family 4", hex: `${SIG} 21 41 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  {
    name: "v2 IPv4 with transport UNSPEC",
    hex: `${SIG} 21 10 000c c0000207 c0000201 9c40 0438`,
    reply: "general_failure",
  },
  { name: "v2 IPv4 with transport 3", hex: `${SIG} 21 13 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  { name: "v2 UNSPEC family with transport STREAM", hex: `${SIG} 21 01 0000`, reply: "general_failure" },
  { name: "v2 IPv4 with length 11", hex: `${SIG} 21 11 000b c0000207 c0000201 9c40 04`, reply: "general_failure" },
  { name: "v2 IPv6 with length 12", hex: `${SIG} 21 21 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  { name: "v2 UNIX with length 12", hex: `${SIG} 21 31 000c c0000207 c0000201 9c40 0438`, reply: "general_failure" },
  {
    name: `v2 longer than ${MAX_PROXY_V2_LENGTH} bytes`,
    hex: `${SIG} 21 11 ${(MAX_PROXY_V2_LENGTH - 15).toString(16).padStart(4, "0")}`,
    reply: "general_failure",
  },
  { name: "v2 with the largest length, 65535", hex: `${SIG} 21 11 ffff c0000207`, reply: "general_failure" },
  {
    name: "v2 with 2 bytes after the last TLV",
    hex: `${SIG} 21 11 000e c0000207 c0000201 9c40 0438 0400`,
    reply: "general_failure",
  },
  {
    name: "v2 with a TLV that overruns the header",
    hex: `${SIG} 21 11 0010 c0000207 c0000201 9c40 0438 04 0002 ab`,
    reply: "general_failure",
  },
  {
    name: "v2 with a TLV length of 65535",
    hex: `${SIG} 21 11 0013 c0000207 c0000201 9c40 0438 05 ffff 00000000`,
    reply: "general_failure",
  },
  {
    name: "v2 with a 3-byte CRC32C TLV",
    hex: `${SIG} 21 11 0012 c0000207 c0000201 9c40 0438 03 0003 000000`,
    reply: "general_failure",
  },
  {
    name: "HAProxy's crc32c,unique-id header with one source byte changed",
    hex: `${SIG} 21110016 7f00000a 7f000001 9c42 e3be 030004 79c83f36 050000`,
    reply: "general_failure",
  },
];

testVectors("decodeProxyHeader / encodeProxyHeader: v1", {
  decode: decodeProxyHeader,
  encode: (value) => encodeProxyHeader(value),
  vectors: V1_VECTORS,
});
testVectors("decodeProxyHeader / encodeProxyHeader: v2", {
  decode: decodeProxyHeader,
  encode: (value) => encodeProxyHeader(value),
  vectors: V2_VECTORS,
});
testVectors("decodeProxyHeader: headers captured from HAProxy 2.6", {
  decode: decodeProxyHeader,
  encode: (value) => encodeProxyHeader(value),
  vectors: HAPROXY_VECTORS,
});
testMalformed("decodeProxyHeader: malformed headers", { decode: decodeProxyHeader, vectors: MALFORMED });

describe("decodeProxyHeader: early answers", () => {
  test("rejects a SOCKS5 first byte at once, before more bytes arrive", () => {
    assert.throws(() => decodeProxyHeader(fromHex("05")), ProtocolError);
  });

  test("asks for the 16 fixed bytes of v2, then for the whole length", () => {
    assert.deepEqual(decodeProxyHeader(new Uint8Array(0)), { ok: false, need: 1 });
    assert.deepEqual(decodeProxyHeader(fromHex("0d0a")), { ok: false, need: 16 });
    assert.deepEqual(decodeProxyHeader(fromHex(`${SIG} 21 11 000c c000`)), { ok: false, need: 28 });
  });

  test("rejects an oversized v2 length as soon as the 16 fixed bytes are in", () => {
    assert.throws(() => decodeProxyHeader(fromHex(`${SIG} 21 11 1000`)), /longer than 4096/);
  });

  test("rejects a wrong v2 version or family byte before the length arrives", () => {
    assert.throws(() => decodeProxyHeader(fromHex(`${SIG} 11`)), /version/);
    assert.throws(() => decodeProxyHeader(fromHex(`${SIG} 21 51`)), /family/);
  });

  test("a v1 line is read up to its CRLF; the SOCKS bytes behind it are left", () => {
    const bytes = fromHex(`${ascii("PROXY TCP4 192.0.2.7 192.0.2.1 40000 1080\r\n")} 05 01 00`);
    const decoded = decodeProxyHeader(bytes);
    assert.equal(decoded.ok && decoded.size, bytes.length - 3);
  });
});

describe("encodeProxyHeader", () => {
  const header = tcp(2, 4, ["192.0.2.7", 40000], ["192.0.2.1", 1080], [tlv(PROXY_TLV.NOOP, "00")]);

  test("with crc32c appends a CRC32C TLV that the decoder checks", () => {
    const bytes = encodeProxyHeader(header, { crc32c: true });
    const decoded = decodeProxyHeader(bytes);
    assert.ok(decoded.ok && decoded.value.command === "proxy");
    assert.deepEqual(decoded.value.tlvs.map((t) => t.type), [PROXY_TLV.NOOP, PROXY_TLV.CRC32C]);
    const crcType = bytes.length - 7;
    for (let at = 16; at < bytes.length; at++) {
      if (at === crcType) continue; // turns the CRC32C TLV into another TLV: nothing left to check
      const copy = bytes.slice();
      copy[at] = (copy[at] as number) ^ 0x01;
      assert.throws(() => decodeProxyHeader(copy), ProtocolError, `byte ${at} flipped: ${toHex(copy)}`);
    }
  });

  test("refuses what the version cannot say", () => {
    assert.throws(() => encodeProxyHeader({ version: 1, command: "local" } as never), RangeError);
    assert.throws(() => encodeProxyHeader({ ...header, version: 1, tlvs: [], transport: "datagram" }), RangeError);
    assert.throws(() => encodeProxyHeader({ ...header, family: 6 }), RangeError);
    assert.throws(() => encodeProxyHeader({ ...header, source: { host: "example.com", port: 1 } }), RangeError);
    assert.throws(() => encodeProxyHeader({ ...header, source: { host: "192.0.2.7", port: 65536 } }), RangeError);
    assert.throws(() => encodeProxyHeader({ ...header, tlvs: [tlv(256, "")] }), RangeError);
    assert.throws(
      () => encodeProxyHeader({ ...header, tlvs: [{ type: 1, value: new Uint8Array(0x10000) }] }),
      RangeError,
    );
  });

  test("v2 LOCAL is the 16 fixed bytes", () => {
    assert.equal(toHex(encodeProxyHeader({ version: 2, command: "local" })), toHex(fromHex(`${SIG} 20 00 0000`)));
    assert.equal(toHex(PROXY_V2_SIGNATURE), toHex(fromHex(SIG)));
  });
});

describe("crc32c", () => {
  test("gives the CRC-32C check value for 123456789", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  });
});

describe("properties", () => {
  const endpoint = (family: 4 | 6) =>
    (family === 4 ? ipv4TargetArbitrary : ipv6TargetArbitrary).map((target): ProxyEndpoint => ({
      host: target.host,
      port: target.port,
    }));
  const tlvArbitrary = fc.record({
    type: fc.integer({ min: 0, max: 0xff }).filter((type) => type !== PROXY_TLV.CRC32C),
    value: fc.uint8Array({ maxLength: 40 }),
  }, { noNullPrototype: true });
  const proxied = (version: 1 | 2) =>
    fc.constantFrom<4 | 6>(4, 6).chain((family) =>
      fc.record({
        version: fc.constant(version),
        command: fc.constant("proxy" as const),
        family: fc.constant(family),
        transport: version === 1
          ? fc.constant("stream" as const)
          : fc.constantFrom("stream" as const, "datagram" as const),
        source: endpoint(family),
        destination: endpoint(family),
        tlvs: version === 1 ? fc.constant([]) : fc.array(tlvArbitrary, { maxLength: 4 }),
      }, { noNullPrototype: true })
    );
  const headerArbitrary: fc.Arbitrary<ProxyHeader> = fc.oneof(
    proxied(1),
    proxied(2),
    fc.constant({ version: 1 as const, command: "unknown" as const, tlvs: [] }),
    fc.array(tlvArbitrary, { maxLength: 3 }).map((tlvs) => ({
      version: 2 as const,
      command: "unknown" as const,
      tlvs,
    })),
    fc.constant({ version: 2 as const, command: "local" as const }),
  );

  test("decode(encode(header)) is the header, whole and one byte at a time", () => {
    fc.assert(fc.property(headerArbitrary, (header) => {
      const bytes = encodeProxyHeader(header);
      assert.deepEqual(decodeProxyHeader(bytes), { ok: true, value: header, size: bytes.length });
      assertNeedsEveryPrefix(decodeProxyHeader, bytes);
    }));
  });

  test("with a CRC32C TLV, too", () => {
    fc.assert(fc.property(headerArbitrary.filter((h) => h.version === 2 && h.command !== "local"), (header) => {
      const bytes = encodeProxyHeader(header, { crc32c: true });
      const decoded = decodeProxyHeader(bytes);
      assert.ok(decoded.ok && decoded.value.command !== "local");
      assert.equal(decoded.value.tlvs.at(-1)?.type, PROXY_TLV.CRC32C);
    }));
  });

  test("arbitrary bytes after either start give a header, a need or a ProtocolError, never anything else", () => {
    const start = fc.constantFrom(new Uint8Array(0), new TextEncoder().encode("PROXY "), fromHex(`${SIG}21`));
    fc.assert(fc.property(start, fc.uint8Array({ maxLength: 300 }), (prefix, rest) => {
      const bytes = new Uint8Array([...prefix, ...rest]);
      try {
        const decoded = decodeProxyHeader(bytes);
        if (decoded.ok) assert.ok(decoded.size <= bytes.length);
        else assert.ok(decoded.need > bytes.length && decoded.need <= MAX_PROXY_V2_LENGTH);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, String(error));
      }
    }));
  });
});
