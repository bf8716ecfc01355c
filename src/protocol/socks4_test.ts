import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { SOCKS4_REPLY } from "./reply.ts";
import {
  decodeSocks4Reply,
  decodeSocks4Request,
  encodeSocks4Reply,
  encodeSocks4Request,
  SOCKS4_COMMAND,
  SOCKS4_VERSION,
  type Socks4Command,
  type Socks4Request,
} from "./socks4.ts";
import type { Target } from "./target.ts";
import { domainTargetArbitrary, ipv4TargetArbitrary } from "../../tests/vectors/arbitraries.ts";
import { CAPTURED_SOCKS4_REQUESTS } from "../../tests/vectors/captured.ts";
import {
  assertHex,
  assertNeedsEveryPrefix,
  type MalformedVector,
  testMalformed,
  testVectors,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

const REQUESTS: Vector<Socks4Request>[] = [
  {
    name: "SOCKS4.protocol CONNECT with a USERID",
    hex: "04 01 0050 c0000201 66726564 00",
    value: { command: 1, target: { kind: "ipv4", host: "192.0.2.1", port: 80 }, userId: "fred" },
  },
  {
    name: "SOCKS4.protocol BIND with an empty USERID",
    hex: "04 02 0015 c0000201 00",
    value: { command: 2, target: { kind: "ipv4", host: "192.0.2.1", port: 21 }, userId: "" },
  },
  {
    name: "SOCKS4A.protocol CONNECT to a domain name",
    hex: "04 01 0050 00000001 66726564 00 6578616d706c652e636f6d 00",
    value: {
      command: 1,
      target: { kind: "domain", host: "example.com", port: 80 },
      userId: "fred",
    },
  },
  {
    name: "SOCKS4A.protocol BIND with a domain name",
    hex: "04 02 0015 00000001 00 6578616d706c652e636f6d 00",
    value: { command: 2, target: { kind: "domain", host: "example.com", port: 21 }, userId: "" },
  },
  {
    name: "SOCKS4A request with DSTIP 0.0.0.255",
    hex: "04 01 0050 000000ff 00 61 00",
    value: { command: 1, target: { kind: "domain", host: "a", port: 80 }, userId: "" },
    decodeOnly: true,
  },
  {
    name: "request to 0.0.0.0 (not 4A: x must be nonzero)",
    hex: "04 01 0050 00000000 00",
    value: { command: 1, target: { kind: "ipv4", host: "0.0.0.0", port: 80 }, userId: "" },
  },
  {
    name: "request with a 255-byte USERID",
    hex: `04 01 0050 7f000001 ${"61".repeat(255)} 00`,
    value: {
      command: 1,
      target: { kind: "ipv4", host: "127.0.0.1", port: 80 },
      userId: "a".repeat(255),
    },
  },
  {
    name: "SOCKS4A request with a 255-byte hostname",
    hex: `04 01 0050 00000001 00 ${"62".repeat(255)} 00`,
    value: { command: 1, target: { kind: "domain", host: "b".repeat(255), port: 80 }, userId: "" },
  },
  {
    name: "request with a UTF-8 USERID",
    hex: "04 01 0050 7f000001 6ac3b67267 00",
    value: {
      command: 1,
      target: { kind: "ipv4", host: "127.0.0.1", port: 80 },
      userId: "j\u00f6rg",
    },
  },
  {
    name: "request with a USERID that is not UTF-8 (read leniently)",
    hex: "04 01 0050 7f000001 ff 00",
    value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 80 }, userId: "\ufffd" },
    decodeOnly: true,
  },
  ...CAPTURED_SOCKS4_REQUESTS,
];

const MALFORMED_REQUESTS: MalformedVector[] = [
  { name: "VN 5 (a SOCKS5 greeting)", hex: "05 01 00", reply: "general_failure" },
  { name: "VN 0", hex: "00", reply: "general_failure" },
  { name: "CD 0", hex: "04 00 0050 7f000001 00", reply: "command_not_supported" },
  { name: "CD 3", hex: "04 03", reply: "command_not_supported" },
  {
    name: "a 256-byte USERID",
    hex: `04 01 0050 7f000001 ${"61".repeat(256)} 00`,
    reply: "general_failure",
  },
  { name: "an empty SOCKS4A hostname", hex: "04 01 0050 00000001 00 00", reply: "general_failure" },
  {
    name: "a 256-byte SOCKS4A hostname",
    hex: `04 01 0050 00000001 00 ${"62".repeat(256)} 00`,
    reply: "general_failure",
  },
];

type Socks4Reply = { code: number; bound: { host: string; port: number } };

const REPLIES: Vector<Socks4Reply>[] = [
  {
    name: "SOCKS4.protocol granted CONNECT reply",
    hex: "00 5a 0000 00000000",
    value: { code: SOCKS4_REPLY.GRANTED, bound: { host: "0.0.0.0", port: 0 } },
  },
  {
    name: "SOCKS4.protocol granted BIND reply with the listening address",
    hex: "00 5a 1f90 c0000201",
    value: { code: SOCKS4_REPLY.GRANTED, bound: { host: "192.0.2.1", port: 8080 } },
  },
  {
    name: "SOCKS4.protocol rejected reply",
    hex: "00 5b 0000 00000000",
    value: { code: SOCKS4_REPLY.REJECTED, bound: { host: "0.0.0.0", port: 0 } },
  },
  {
    name: "SOCKS4.protocol identd mismatch reply",
    hex: "00 5d 0000 00000000",
    value: { code: SOCKS4_REPLY.IDENTD_MISMATCH, bound: { host: "0.0.0.0", port: 0 } },
  },
  {
    name: "reply with VN 4 (sent by the original srelay)",
    hex: "04 5b 0000 00000000",
    value: { code: SOCKS4_REPLY.REJECTED, bound: { host: "0.0.0.0", port: 0 } },
    decodeOnly: true,
  },
];

const MALFORMED_REPLIES: MalformedVector[] = [
  { name: "VN 5 (a SOCKS5 reply)", hex: "05 00 00 01 00000000 0000", reply: "general_failure" },
  { name: "VN 0x48 (an HTTP response)", hex: "48", reply: "general_failure" },
];

testVectors("decodeSocks4Request() / encodeSocks4Request()", {
  decode: decodeSocks4Request,
  encode: (value) => encodeSocks4Request(value.command, value.target, value.userId),
  vectors: REQUESTS,
});
testMalformed("decodeSocks4Request()", {
  decode: decodeSocks4Request,
  vectors: MALFORMED_REQUESTS,
});

testVectors("decodeSocks4Reply() / encodeSocks4Reply()", {
  decode: decodeSocks4Reply,
  encode: (value) => encodeSocks4Reply(value.code, value.bound),
  vectors: REPLIES,
});
testMalformed("decodeSocks4Reply()", { decode: decodeSocks4Reply, vectors: MALFORMED_REPLIES });

describe("decodeSocks4Request()", () => {
  test("returns need 8 until the fixed header has arrived", () => {
    assert.deepEqual(decodeSocks4Request(new Uint8Array([4, 1, 0])), { ok: false, need: 8 });
  });

  test("returns need one past the input while USERID has no NUL yet", () => {
    const bytes = new Uint8Array([4, 1, 0, 80, 127, 0, 0, 1, 0x61, 0x62]);
    assert.deepEqual(decodeSocks4Request(bytes), { ok: false, need: 11 });
  });

  test("returns need one past the input while the 4A hostname has no NUL yet", () => {
    const bytes = new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0]);
    assert.deepEqual(decodeSocks4Request(bytes), { ok: false, need: 10 });
    assert.deepEqual(decodeSocks4Request(new Uint8Array([...bytes, 0x61])), {
      ok: false,
      need: 11,
    });
  });

  test("throws command_not_supported as soon as the CD byte arrives", () => {
    assert.throws(
      () => decodeSocks4Request(new Uint8Array([4, 9])),
      {
        name: "ProtocolError",
        reply: "command_not_supported",
        message: "Cannot decode SOCKS4 request: command 0x09 is unsupported",
      },
    );
  });

  test("throws once 256 USERID bytes arrived without a NUL", () => {
    const bytes = new Uint8Array(8 + 256).fill(0x61);
    bytes.set([4, 1, 0, 80, 127, 0, 0, 1]);
    assert.deepEqual(decodeSocks4Request(bytes.subarray(0, 8 + 255)), { ok: false, need: 8 + 256 });
    assert.throws(() => decodeSocks4Request(bytes), {
      name: "ProtocolError",
      reply: "general_failure",
    });
  });
});

describe("encodeSocks4Request()", () => {
  test("throws RangeError for an IPv6 target", () => {
    assert.throws(
      () => encodeSocks4Request(1, { kind: "ipv6", host: "::1", port: 80 }, ""),
      new RangeError("Cannot encode SOCKS4 request: IPv6 destinations are not representable"),
    );
  });

  const invalid: Array<[string, Target, string]> = [
    [
      "an IPv4 target that looks like the 4A marker",
      { kind: "ipv4", host: "0.0.0.7", port: 80 },
      "",
    ],
    ["a 256-byte USERID", { kind: "ipv4", host: "127.0.0.1", port: 80 }, "a".repeat(256)],
    ["a USERID with NUL", { kind: "ipv4", host: "127.0.0.1", port: 80 }, "a\0b"],
    ["an empty hostname", { kind: "domain", host: "", port: 80 }, ""],
    ["a 256-character hostname", { kind: "domain", host: "a".repeat(256), port: 80 }, ""],
    ["a hostname beyond Latin-1", { kind: "domain", host: "\u4f8b.jp", port: 80 }, ""],
    ["port 65536", { kind: "ipv4", host: "127.0.0.1", port: 65536 }, ""],
    ["an invalid IPv4 host", { kind: "ipv4", host: "localhost", port: 80 }, ""],
    ["an IPv4 host with a leading zero", { kind: "ipv4", host: "010.0.0.1", port: 80 }, ""],
  ];
  for (const [name, target, userId] of invalid) {
    test(`throws RangeError for ${name}`, () => {
      assert.throws(() => encodeSocks4Request(1, target, userId), RangeError);
    });
  }

  test("throws RangeError for a command other than CONNECT or BIND", () => {
    const command = 3 as Socks4Command;
    assert.throws(
      () => encodeSocks4Request(command, { kind: "ipv4", host: "127.0.0.1", port: 80 }, ""),
      RangeError,
    );
  });
});

describe("encodeSocks4Reply()", () => {
  test("always sends VN 0", () => {
    assertHex(encodeSocks4Reply(SOCKS4_REPLY.REJECTED, null), "00 5b 0000 00000000");
  });

  test("sends 0.0.0.0:0 for a non-IPv4 bound address", () => {
    assertHex(
      encodeSocks4Reply(SOCKS4_REPLY.GRANTED, { host: "2001:db8::1", port: 1080 }),
      "00 5a 0000 00000000",
    );
    assertHex(
      encodeSocks4Reply(SOCKS4_REPLY.GRANTED, { host: "localhost", port: 1080 }),
      "00 5a 0000 00000000",
    );
  });

  test("sends the IPv4 address of an IPv4-mapped IPv6 bound address", () => {
    assertHex(
      encodeSocks4Reply(SOCKS4_REPLY.GRANTED, { host: "::ffff:10.0.0.1", port: 1080 }),
      "00 5a 0438 0a000001",
    );
    assertHex(
      encodeSocks4Reply(SOCKS4_REPLY.GRANTED, { host: "::FFFF:0a00:0001", port: 1080 }),
      "00 5a 0438 0a000001",
    );
  });

  test("sends 0.0.0.0:0 for an IPv4-compatible bound address (::a.b.c.d is IPv6)", () => {
    assertHex(
      encodeSocks4Reply(SOCKS4_REPLY.GRANTED, { host: "::10.0.0.1", port: 1080 }),
      "00 5a 0000 00000000",
    );
  });

  test("throws RangeError for a code that is not a byte or an invalid port", () => {
    assert.throws(() => encodeSocks4Reply(256, null), RangeError);
    assert.throws(() => encodeSocks4Reply(0x5a, { host: "10.0.0.1", port: 65536 }), RangeError);
  });
});

test("SOCKS4 constants hold the SOCKS4.protocol values", () => {
  assert.equal(SOCKS4_VERSION, 4);
  assert.deepEqual(SOCKS4_COMMAND, { CONNECT: 1, BIND: 2 });
});

describe("SOCKS4 properties", () => {
  const socks4TargetArbitrary = fc.oneof(
    ipv4TargetArbitrary.filter((target) => !/^0\.0\.0\.[1-9]/.test(target.host)),
    domainTargetArbitrary,
  );
  const userIdArbitrary = fc
    .string({ unit: "grapheme", maxLength: 60 })
    .filter((text) => !text.includes("\0") && new TextEncoder().encode(text).length <= 255);
  const requestArbitrary = fc.record(
    {
      command: fc.constantFrom(SOCKS4_COMMAND.CONNECT, SOCKS4_COMMAND.BIND),
      target: socks4TargetArbitrary,
      userId: userIdArbitrary,
    },
    { noNullPrototype: true },
  );

  test("decodeSocks4Request() decodes what encodeSocks4Request() encodes", () => {
    fc.assert(fc.property(requestArbitrary, (request) => {
      const bytes = encodeSocks4Request(request.command, request.target, request.userId);
      assert.deepEqual(decodeSocks4Request(bytes), {
        ok: true,
        value: request,
        size: bytes.length,
      });
    }));
  });

  test("every prefix of a valid request returns need, never throws", () => {
    fc.assert(fc.property(requestArbitrary, (request) => {
      assertNeedsEveryPrefix(
        decodeSocks4Request,
        encodeSocks4Request(request.command, request.target, request.userId),
      );
    }));
  });

  test("decodeSocks4Reply() decodes what encodeSocks4Reply() encodes for IPv4", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xff }), ipv4TargetArbitrary, (code, target) => {
        const bound = { host: target.host, port: target.port };
        assert.deepEqual(decodeSocks4Reply(encodeSocks4Reply(code, bound)), {
          ok: true,
          value: { code, bound },
          size: 8,
        });
      }),
    );
  });
});
