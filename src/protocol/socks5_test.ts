import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "./decoded.ts";
import { SOCKS5_REPLY } from "./reply.ts";
import {
  decodeSocks5Greeting,
  decodeSocks5MethodSelection,
  decodeSocks5Reply,
  decodeSocks5Request,
  encodeSocks5Greeting,
  encodeSocks5MethodSelection,
  encodeSocks5Reply,
  encodeSocks5Request,
  SOCKS5_COMMAND,
  SOCKS5_METHOD,
  SOCKS5_VERSION,
  type Socks5Greeting,
  type Socks5Reply,
  type Socks5Request,
} from "./socks5.ts";
import { targetArbitrary } from "../../tests/vectors/arbitraries.ts";
import { CAPTURED_SOCKS5_GREETINGS, CAPTURED_SOCKS5_REQUESTS } from "../../tests/vectors/captured.ts";
import {
  assertHex,
  assertNeedsEveryPrefix,
  fromHex,
  type MalformedVector,
  testMalformed,
  testVectors,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

const GREETINGS: Vector<Socks5Greeting>[] = [
  {
    name: "RFC 1928 greeting offering no authentication",
    hex: "05 01 00",
    value: { methods: [0x00] },
  },
  {
    name: "RFC 1928 greeting offering no authentication and username/password",
    hex: "05 02 00 02",
    value: { methods: [0x00, 0x02] },
  },
  {
    name: "greeting offering all 255 methods",
    hex: `05 ff ${Array.from({ length: 255 }, (_, i) => i.toString(16).padStart(2, "0")).join("")}`,
    value: { methods: Array.from({ length: 255 }, (_, i) => i) },
  },
  ...CAPTURED_SOCKS5_GREETINGS,
];

const MALFORMED_GREETINGS: MalformedVector[] = [
  { name: "a SOCKS4 request", hex: "04 01 0050 7f000001 00", reply: "general_failure" },
  { name: "an HTTP request", hex: "434f4e4e454354", reply: "general_failure" },
  { name: "NMETHODS 0", hex: "05 00", reply: "general_failure" },
];

const METHOD_SELECTIONS: Vector<{ method: number }>[] = [
  { name: "RFC 1928 selection of no authentication", hex: "05 00", value: { method: 0x00 } },
  { name: "RFC 1928 selection of username/password", hex: "05 02", value: { method: 0x02 } },
  { name: "RFC 1928 NO ACCEPTABLE METHODS", hex: "05 ff", value: { method: 0xff } },
];

const MALFORMED_METHOD_SELECTIONS: MalformedVector[] = [
  { name: "an RFC 1929 reply", hex: "01 00", reply: "general_failure" },
  { name: "an HTTP response", hex: "48545450", reply: "general_failure" },
];

const REQUESTS: Vector<Socks5Request>[] = [
  {
    name: "RFC 1928 CONNECT to an IPv4 address",
    hex: "05 01 00 01 c0000201 0050",
    value: { command: 1, target: { kind: "ipv4", host: "192.0.2.1", port: 80 } },
  },
  {
    name: "RFC 1928 CONNECT to a domain name",
    hex: "05 01 00 03 0b 6578616d706c652e636f6d 01bb",
    value: { command: 1, target: { kind: "domain", host: "example.com", port: 443 } },
  },
  {
    name: "RFC 1928 BIND with an IPv6 address",
    hex: "05 02 00 04 20010db8000000000000000000000001 0015",
    value: { command: 2, target: { kind: "ipv6", host: "2001:db8::1", port: 21 } },
  },
  {
    name: "RFC 1928 UDP ASSOCIATE with an unknown client address",
    hex: "05 03 00 01 00000000 0000",
    value: { command: 3, target: { kind: "ipv4", host: "0.0.0.0", port: 0 } },
  },
  {
    name: "request with a nonzero RSV (not checked)",
    hex: "05 01 ff 01 7f000001 0016",
    value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 22 } },
    decodeOnly: true,
  },
  ...CAPTURED_SOCKS5_REQUESTS,
];

const MALFORMED_REQUESTS: MalformedVector[] = [
  { name: "VER 4", hex: "04 01 00 01 7f000001 0050", reply: "general_failure" },
  { name: "CMD 0x00", hex: "05 00 00 01 7f000001 0050", reply: "command_not_supported" },
  { name: "CMD 0x04", hex: "05 04 00 01 7f000001 0050", reply: "command_not_supported" },
  { name: "CMD 0xff", hex: "05 ff", reply: "command_not_supported" },
  { name: "ATYP 0x02", hex: "05 01 00 02 7f000001 0050", reply: "address_type_not_supported" },
  { name: "ATYP 0x00", hex: "05 01 00 00", reply: "address_type_not_supported" },
  { name: "an empty domain name", hex: "05 01 00 03 00 0050", reply: "general_failure" },
  { name: "a domain name with NUL", hex: "05 01 00 03 02 6100 0050", reply: "general_failure" },
];

const REPLIES: Vector<Socks5Reply>[] = [
  {
    name: "RFC 1928 succeeded reply with an IPv4 bound address",
    hex: "05 00 00 01 c0000201 1f90",
    value: { code: SOCKS5_REPLY.SUCCEEDED, bound: { kind: "ipv4", host: "192.0.2.1", port: 8080 } },
  },
  {
    name: "RFC 1928 succeeded reply with an IPv6 bound address",
    hex: "05 00 00 04 20010db8000000000000000000000002 c350",
    value: {
      code: SOCKS5_REPLY.SUCCEEDED,
      bound: { kind: "ipv6", host: "2001:db8::2", port: 50000 },
    },
  },
  {
    name: "succeeded reply with a domain bound address",
    hex: "05 00 00 03 09 6c6f63616c686f7374 0438",
    value: {
      code: SOCKS5_REPLY.SUCCEEDED,
      bound: { kind: "domain", host: "localhost", port: 1080 },
    },
  },
  {
    name: "RFC 1928 connection refused reply",
    hex: "05 05 00 01 00000000 0000",
    value: {
      code: SOCKS5_REPLY.CONNECTION_REFUSED,
      bound: { kind: "ipv4", host: "0.0.0.0", port: 0 },
    },
  },
  {
    name: "reply with an unassigned REP code (not judged)",
    hex: "05 42 00 01 00000000 0000",
    value: { code: 0x42, bound: { kind: "ipv4", host: "0.0.0.0", port: 0 } },
  },
];

const MALFORMED_REPLIES: MalformedVector[] = [
  { name: "a SOCKS4 reply", hex: "00 5a 0000 00000000", reply: "general_failure" },
  { name: "an RFC 1929 reply", hex: "01 00", reply: "general_failure" },
  { name: "ATYP 0x07", hex: "05 00 00 07", reply: "address_type_not_supported" },
];

testVectors("decodeSocks5Greeting() / encodeSocks5Greeting()", {
  decode: decodeSocks5Greeting,
  encode: (value) => encodeSocks5Greeting(value.methods),
  vectors: GREETINGS,
});
testMalformed("decodeSocks5Greeting()", {
  decode: decodeSocks5Greeting,
  vectors: MALFORMED_GREETINGS,
});

testVectors("decodeSocks5MethodSelection() / encodeSocks5MethodSelection()", {
  decode: decodeSocks5MethodSelection,
  encode: (value) => encodeSocks5MethodSelection(value.method),
  vectors: METHOD_SELECTIONS,
});
testMalformed("decodeSocks5MethodSelection()", {
  decode: decodeSocks5MethodSelection,
  vectors: MALFORMED_METHOD_SELECTIONS,
});

testVectors("decodeSocks5Request() / encodeSocks5Request()", {
  decode: decodeSocks5Request,
  encode: (value) => encodeSocks5Request(value.command, value.target),
  vectors: REQUESTS,
});
testMalformed("decodeSocks5Request()", {
  decode: decodeSocks5Request,
  vectors: MALFORMED_REQUESTS,
});

testVectors("decodeSocks5Reply() / encodeSocks5Reply()", {
  decode: decodeSocks5Reply,
  encode: (value) => encodeSocks5Reply(value.code, value.bound),
  vectors: REPLIES,
});
testMalformed("decodeSocks5Reply()", { decode: decodeSocks5Reply, vectors: MALFORMED_REPLIES });

describe("decodeSocks5Greeting()", () => {
  test("says that no methods were offered", () => {
    assert.throws(
      () => decodeSocks5Greeting(fromHex("05 00")),
      new ProtocolError("Cannot decode SOCKS5 greeting: no methods offered", "general_failure"),
    );
  });

  test("returns need 2 until NMETHODS arrives, then 2 + NMETHODS", () => {
    assert.deepEqual(decodeSocks5Greeting(new Uint8Array(0)), { ok: false, need: 2 });
    assert.deepEqual(decodeSocks5Greeting(fromHex("05")), { ok: false, need: 2 });
    assert.deepEqual(decodeSocks5Greeting(fromHex("05 03 00")), { ok: false, need: 5 });
  });

  test("leaves pipelined bytes for the caller", () => {
    const bytes = fromHex("05 01 00 05 01 00 01 7f000001 0050");
    assert.deepEqual(decodeSocks5Greeting(bytes), { ok: true, value: { methods: [0] }, size: 3 });
    assert.deepEqual(decodeSocks5Request(bytes.subarray(3)), {
      ok: true,
      value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 80 } },
      size: 10,
    });
  });
});

describe("decodeSocks5Request()", () => {
  test("throws command_not_supported as soon as the CMD byte arrives", () => {
    assert.throws(
      () => decodeSocks5Request(fromHex("05 09")),
      new ProtocolError(
        "Cannot decode SOCKS5 request: command 0x09 is unsupported",
        "command_not_supported",
      ),
    );
  });

  test("names the version in hex", () => {
    assert.throws(
      () => decodeSocks5Request(fromHex("04")),
      new ProtocolError(
        "Cannot decode SOCKS5 request: version 0x04 is not 0x05",
        "general_failure",
      ),
    );
  });

  test("returns need 5 for a domain until its length byte arrives", () => {
    assert.deepEqual(decodeSocks5Request(fromHex("05 01 00 03")), { ok: false, need: 5 });
    assert.deepEqual(decodeSocks5Request(fromHex("05 01 00 03 0b 65")), { ok: false, need: 18 });
  });

  test("returns need 10 for IPv4 and 22 for IPv6 once ATYP arrives", () => {
    assert.deepEqual(decodeSocks5Request(fromHex("05 01 00 01")), { ok: false, need: 10 });
    assert.deepEqual(decodeSocks5Request(fromHex("05 01 00 04")), { ok: false, need: 22 });
  });
});

describe("encodeSocks5Reply()", () => {
  test("sends 0.0.0.0:0 for a null bound address", () => {
    assertHex(encodeSocks5Reply(SOCKS5_REPLY.HOST_UNREACHABLE, null), "05 04 00 01 00000000 0000");
  });

  test("always returns a fresh array", () => {
    const first = encodeSocks5Reply(0, null);
    first[1] = 0x99;
    assertHex(encodeSocks5Reply(0, null), "05 00 00 01 00000000 0000");
  });

  test("throws RangeError for a code that is not a byte", () => {
    assert.throws(() => encodeSocks5Reply(256, null), RangeError);
    assert.throws(() => encodeSocks5Reply(-1, null), RangeError);
  });

  test("throws RangeError for an unrepresentable bound address", () => {
    assert.throws(() => encodeSocks5Reply(0, { kind: "domain", host: "", port: 1 }), RangeError);
  });
});

describe("encodeSocks5Greeting() / encodeSocks5MethodSelection()", () => {
  test("throws RangeError for no methods or more than 255", () => {
    assert.throws(() => encodeSocks5Greeting([]), RangeError);
    assert.throws(() => encodeSocks5Greeting(new Array(256).fill(0)), RangeError);
  });

  test("throws RangeError for a method that is not a byte", () => {
    assert.throws(() => encodeSocks5Greeting([0, 256]), RangeError);
    assert.throws(() => encodeSocks5MethodSelection(-1), RangeError);
    assert.throws(() => encodeSocks5MethodSelection(0.5), RangeError);
  });
});

test("SOCKS5 constants hold the RFC 1928 values", () => {
  assert.equal(SOCKS5_VERSION, 5);
  assert.deepEqual(SOCKS5_METHOD, {
    NO_AUTH: 0,
    GSSAPI: 1,
    USERNAME_PASSWORD: 2,
    NO_ACCEPTABLE: 0xff,
  });
  assert.deepEqual(SOCKS5_COMMAND, { CONNECT: 1, BIND: 2, UDP_ASSOCIATE: 3 });
});

describe("SOCKS5 properties", () => {
  const commandArbitrary = fc.constantFrom(
    SOCKS5_COMMAND.CONNECT,
    SOCKS5_COMMAND.BIND,
    SOCKS5_COMMAND.UDP_ASSOCIATE,
  );
  const requestArbitrary = fc.record({ command: commandArbitrary, target: targetArbitrary }, {
    noNullPrototype: true,
  });
  const replyArbitrary = fc.record(
    { code: fc.integer({ min: 0, max: 0xff }), bound: targetArbitrary },
    { noNullPrototype: true },
  );

  test("decodeSocks5Request() decodes what encodeSocks5Request() encodes", () => {
    fc.assert(fc.property(requestArbitrary, (request) => {
      const bytes = encodeSocks5Request(request.command, request.target);
      assert.deepEqual(decodeSocks5Request(bytes), {
        ok: true,
        value: request,
        size: bytes.length,
      });
    }));
  });

  test("decodeSocks5Reply() decodes what encodeSocks5Reply() encodes", () => {
    fc.assert(fc.property(replyArbitrary, (reply) => {
      const bytes = encodeSocks5Reply(reply.code, reply.bound);
      assert.deepEqual(decodeSocks5Reply(bytes), { ok: true, value: reply, size: bytes.length });
    }));
  });

  test("decodeSocks5Greeting() decodes what encodeSocks5Greeting() encodes", () => {
    const methodsArbitrary = fc.array(fc.integer({ min: 0, max: 0xff }), {
      minLength: 1,
      maxLength: 255,
    });
    fc.assert(fc.property(methodsArbitrary, (methods) => {
      const bytes = encodeSocks5Greeting(methods);
      assert.deepEqual(decodeSocks5Greeting(bytes), {
        ok: true,
        value: { methods },
        size: bytes.length,
      });
    }));
  });

  test("every prefix of a valid request or reply returns need, never throws", () => {
    fc.assert(fc.property(requestArbitrary, replyArbitrary, (request, reply) => {
      assertNeedsEveryPrefix(
        decodeSocks5Request,
        encodeSocks5Request(request.command, request.target),
      );
      assertNeedsEveryPrefix(decodeSocks5Reply, encodeSocks5Reply(reply.code, reply.bound));
    }));
  });
});
