import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  decodeUserPassReply,
  decodeUserPassRequest,
  encodeUserPassReply,
  encodeUserPassRequest,
  USERPASS_VERSION,
} from "./socks5_auth.ts";
import { CAPTURED_USERPASS_REQUESTS } from "../../tests/vectors/captured.ts";
import {
  assertNeedsEveryPrefix,
  type MalformedVector,
  testMalformed,
  testVectors,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

const REQUESTS: Vector<{ username: string; password: string }>[] = [
  {
    name: "RFC 1929 request with one-byte fields",
    hex: "01 01 75 01 70",
    value: { username: "u", password: "p" },
  },
  {
    name: "RFC 1929 request with 255-byte fields",
    hex: `01 ff ${"61".repeat(255)} ff ${"62".repeat(255)}`,
    value: { username: "a".repeat(255), password: "b".repeat(255) },
  },
  {
    name: "request with UTF-8 fields",
    hex: "01 05 6ac3b67267 05 70c3a47373",
    value: { username: "j\u00f6rg", password: "p\u00e4ss" },
  },
  {
    name: "request whose username starts with U+FEFF (kept)",
    hex: "01 04 efbbbf61 01 70",
    value: { username: "\ufeffa", password: "p" },
  },
  ...CAPTURED_USERPASS_REQUESTS,
];

const MALFORMED_REQUESTS: MalformedVector[] = [
  { name: "VER 5 (a greeting sent instead)", hex: "05 01 00", reply: "general_failure" },
  { name: "VER 0", hex: "00", reply: "general_failure" },
  { name: "ULEN 0", hex: "01 00 01 70", reply: "general_failure" },
  { name: "PLEN 0", hex: "01 01 75 00", reply: "general_failure" },
  { name: "a username that is not UTF-8", hex: "01 01 ff 01 70", reply: "general_failure" },
  { name: "a password that is not UTF-8", hex: "01 01 75 02 c328", reply: "general_failure" },
];

const REPLIES: Vector<{ success: boolean }>[] = [
  { name: "RFC 1929 success reply", hex: "01 00", value: { success: true } },
  { name: "RFC 1929 failure reply", hex: "01 01", value: { success: false } },
  {
    name: "failure reply with STATUS 0xff",
    hex: "01 ff",
    value: { success: false },
    decodeOnly: true,
  },
  {
    name: "success reply with VER 5 (sent by many servers)",
    hex: "05 00",
    value: { success: true },
    decodeOnly: true,
  },
  { name: "failure reply with VER 5", hex: "05 01", value: { success: false }, decodeOnly: true },
];

const MALFORMED_REPLIES: MalformedVector[] = [
  { name: "VER 0", hex: "00 00", reply: "general_failure" },
  { name: "VER 4", hex: "04 00", reply: "general_failure" },
];

testVectors("decodeUserPassRequest() / encodeUserPassRequest()", {
  decode: decodeUserPassRequest,
  encode: (value) => encodeUserPassRequest(value.username, value.password),
  vectors: REQUESTS,
});
testMalformed("decodeUserPassRequest()", {
  decode: decodeUserPassRequest,
  vectors: MALFORMED_REQUESTS,
});

testVectors("decodeUserPassReply() / encodeUserPassReply()", {
  decode: decodeUserPassReply,
  encode: (value) => encodeUserPassReply(value.success),
  vectors: REPLIES,
});
testMalformed("decodeUserPassReply()", { decode: decodeUserPassReply, vectors: MALFORMED_REPLIES });

describe("decodeUserPassRequest()", () => {
  test("returns need for PLEN once the username is known", () => {
    assert.deepEqual(decodeUserPassRequest(new Uint8Array([1, 3, 0x61])), { ok: false, need: 6 });
    assert.deepEqual(decodeUserPassRequest(new Uint8Array([1, 3, 0x61, 0x62, 0x63, 2])), {
      ok: false,
      need: 8,
    });
  });
});

describe("encodeUserPassRequest()", () => {
  const invalid: Array<[string, string, string]> = [
    ["an empty username", "", "p"],
    ["an empty password", "u", ""],
    ["a 256-byte username", "a".repeat(256), "p"],
    ["a password of 128 two-byte characters", "u", "\u00e9".repeat(128)],
  ];
  for (const [name, username, password] of invalid) {
    test(`throws RangeError for ${name}`, () => {
      assert.throws(() => encodeUserPassRequest(username, password), RangeError);
    });
  }

  test("accepts 255 bytes of UTF-8", () => {
    const bytes = encodeUserPassRequest("u", `${"\u00e9".repeat(127)}a`);
    assert.equal(bytes[3], 255);
    assert.equal(bytes.length, 3 + 1 + 255);
  });
});

test("USERPASS_VERSION is 1", () => {
  assert.equal(USERPASS_VERSION, 1);
});

describe("RFC 1929 properties", () => {
  const fieldArbitrary = fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 80 })
    .filter((text) => new TextEncoder().encode(text).length <= 255);

  test("decodeUserPassRequest() decodes what encodeUserPassRequest() encodes", () => {
    fc.assert(fc.property(fieldArbitrary, fieldArbitrary, (username, password) => {
      const bytes = encodeUserPassRequest(username, password);
      assert.deepEqual(decodeUserPassRequest(bytes), {
        ok: true,
        value: { username, password },
        size: bytes.length,
      });
      assertNeedsEveryPrefix(decodeUserPassRequest, bytes);
    }));
  });
});
