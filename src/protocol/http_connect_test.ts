import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeHttpConnectResponse, encodeHttpConnectRequest, type HttpConnectResponse } from "./http_connect.ts";
import type { Target } from "./target.ts";
import { CAPTURED_HTTP_CONNECT_RESPONSES } from "../../tests/vectors/captured.ts";
import {
  assertRejects,
  type MalformedVector,
  testMalformed,
  testVectors,
  toHex,
  type Vector,
} from "../../tests/vectors/codec_check.ts";

const ENCODER = new TextEncoder();

function textHex(text: string): string {
  return toHex(ENCODER.encode(text));
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

const RESPONSES: Vector<HttpConnectResponse>[] = [
  {
    name: "RFC 9110 2xx response without headers",
    hex: textHex("HTTP/1.1 200 Connection established\r\n\r\n"),
    value: { status: 200, reason: "Connection established", headers: [] },
  },
  {
    name: "response with bare LF line endings",
    hex: textHex("HTTP/1.1 200 OK\nVia: 1.1 proxy\n\n"),
    value: { status: 200, reason: "OK", headers: [["Via", "1.1 proxy"]] },
  },
  {
    name: "response with mixed line endings",
    hex: textHex("HTTP/1.1 200 OK\r\nVia: 1.1 proxy\n\r\n"),
    value: { status: 200, reason: "OK", headers: [["Via", "1.1 proxy"]] },
  },
  {
    name: "response without a reason phrase",
    hex: textHex("HTTP/1.1 200\r\n\r\n"),
    value: { status: 200, reason: "", headers: [] },
  },
  {
    name: "response with an empty reason phrase",
    hex: textHex("HTTP/1.0 200 \r\n\r\n"),
    value: { status: 200, reason: "", headers: [] },
  },
  {
    name: "response with header whitespace variants",
    hex: textHex("HTTP/1.1 502 Bad Gateway\r\nX-A:b\r\nX-Empty:\r\nX-Padded: \t c d \t\r\n\r\n"),
    value: {
      status: 502,
      reason: "Bad Gateway",
      headers: [["X-A", "b"], ["X-Empty", ""], ["X-Padded", "c d"]],
    },
  },
  {
    name: "response with an obsolete folded header",
    hex: textHex(
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n  realm="x"\r\n\r\n',
    ),
    value: {
      status: 407,
      reason: "Proxy Authentication Required",
      headers: [["Proxy-Authenticate", 'Basic realm="x"']],
    },
  },
  {
    name: "response with a Latin-1 reason phrase",
    hex: "48 54 54 50 2f 31 2e 31 20 32 30 30 20 e9 0d 0a 0d 0a",
    value: { status: 200, reason: "\u00e9", headers: [] },
  },
  ...CAPTURED_HTTP_CONNECT_RESPONSES.map((response) => ({
    name: response.name,
    hex: textHex(response.head),
    value: response.value,
  })),
];

const MALFORMED: MalformedVector[] = [
  { name: "a SOCKS5 method selection", hex: "05 00", reply: "general_failure" },
  { name: "an HTTP/2 status line", hex: textHex("HTTP/2 200\r\n\r\n"), reply: "general_failure" },
  { name: "lowercase http", hex: textHex("http/1.1 200 OK\r\n\r\n"), reply: "general_failure" },
  { name: "a two-digit status", hex: textHex("HTTP/1.1 20 OK\r\n\r\n"), reply: "general_failure" },
  {
    name: "a non-numeric status",
    hex: textHex("HTTP/1.1 abc OK\r\n\r\n"),
    reply: "general_failure",
  },
  {
    name: "no space after the version",
    hex: textHex("HTTP/1.1\r\n\r\n"),
    reply: "general_failure",
  },
  {
    name: "a header line without a colon",
    hex: textHex("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
    reply: "general_failure",
  },
  {
    name: "a header with an empty name",
    hex: textHex("HTTP/1.1 200 OK\r\n: x\r\n\r\n"),
    reply: "general_failure",
  },
  {
    name: "a header name with a space",
    hex: textHex("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
    reply: "general_failure",
  },
  {
    name: "a fold before any header",
    hex: textHex("HTTP/1.1 200 OK\r\n folded\r\n\r\n"),
    reply: "general_failure",
  },
];

testVectors("decodeHttpConnectResponse()", {
  decode: decodeHttpConnectResponse,
  vectors: RESPONSES,
});
testMalformed("decodeHttpConnectResponse()", {
  decode: decodeHttpConnectResponse,
  vectors: MALFORMED,
});

describe("decodeHttpConnectResponse()", () => {
  for (const response of CAPTURED_HTTP_CONNECT_RESPONSES) {
    test(`leaves the bytes after the head of ${response.name} to the caller`, () => {
      const bytes = ENCODER.encode(response.head + response.rest);
      const result = decodeHttpConnectResponse(bytes);
      assert.ok(result.ok);
      assert.equal(result.size, ENCODER.encode(response.head).length);
      assert.equal(text(bytes.subarray(result.size)), response.rest);
    });
  }

  test("stops at the first blank line even when the tunnel sends one", () => {
    const bytes = ENCODER.encode("HTTP/1.1 200 OK\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert.deepEqual(decodeHttpConnectResponse(bytes), {
      ok: true,
      value: { status: 200, reason: "OK", headers: [] },
      size: 19,
    });
  });

  test("returns need one past the input until the blank line arrives", () => {
    assert.deepEqual(decodeHttpConnectResponse(ENCODER.encode("HTTP/1.1 200 OK\r\n")), {
      ok: false,
      need: 18,
    });
    assert.deepEqual(decodeHttpConnectResponse(ENCODER.encode("HTTP/1.1 200 OK\r\n\r")), {
      ok: false,
      need: 19,
    });
  });

  test("accepts a head of exactly 16 KiB", () => {
    const start = "HTTP/1.1 200 OK\r\nX-Pad: ";
    const head = `${start}${"a".repeat(16 * 1024 - start.length - 4)}\r\n\r\n`;
    assert.equal(head.length, 16 * 1024);
    const result = decodeHttpConnectResponse(ENCODER.encode(head));
    assert.equal(result.ok && result.size, 16 * 1024);
  });

  test("throws once the head exceeds 16 KiB", () => {
    const start = "HTTP/1.1 200 OK\r\nX-Pad: ";
    const head = `${start}${"a".repeat(16 * 1024 - start.length - 3)}\r\n\r\n`;
    assert.throws(() => decodeHttpConnectResponse(ENCODER.encode(head)), {
      name: "ProtocolError",
      reply: "general_failure",
      message: "Cannot decode HTTP CONNECT response: head is larger than 16384 bytes",
    });
    const endless = ENCODER.encode(`${start}${"a".repeat(20000)}`);
    assert.deepEqual(decodeHttpConnectResponse(endless.subarray(0, 16 * 1024 - 1)), {
      ok: false,
      need: 16 * 1024,
    });
    assert.throws(() => decodeHttpConnectResponse(endless.subarray(0, 16 * 1024)), {
      name: "ProtocolError",
    });
  });

  test("rejects a non-HTTP answer from its first byte", () => {
    assertRejects(decodeHttpConnectResponse, new Uint8Array([0x05]), "general_failure");
  });
});

describe("encodeHttpConnectRequest()", () => {
  const cases: Array<[string, Target, Parameters<typeof encodeHttpConnectRequest>[1], string]> = [
    [
      "an IPv4 target",
      { kind: "ipv4", host: "192.0.2.1", port: 443 },
      undefined,
      "CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n",
    ],
    [
      "a bracketed IPv6 target",
      { kind: "ipv6", host: "2001:db8::1", port: 443 },
      {},
      "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
    ],
    [
      "RFC 7617 Basic credentials",
      { kind: "domain", host: "example.com", port: 443 },
      { credentials: { username: "Aladdin", password: "open sesame" } },
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" +
      "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n",
    ],
    [
      "UTF-8 credentials",
      { kind: "domain", host: "example.com", port: 22 },
      { credentials: { username: "j\u00f6rg", password: "p\u00e4ss" } },
      "CONNECT example.com:22 HTTP/1.1\r\nHost: example.com:22\r\nProxy-Authorization: Basic asO2cmc6cMOkc3M=\r\n\r\n",
    ],
    [
      "credentials and a user agent",
      { kind: "domain", host: "example.com", port: 443 },
      { credentials: { username: "user", password: "pass" }, userAgent: "srelay/0.5.0" },
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" +
      "Proxy-Authorization: Basic dXNlcjpwYXNz\r\nUser-Agent: srelay/0.5.0\r\n\r\n",
    ],
  ];
  for (const [name, target, options, expected] of cases) {
    test(`encodes ${name}`, () => {
      assert.equal(text(encodeHttpConnectRequest(target, options)), expected);
    });
  }

  const invalid: Array<[string, Target, Parameters<typeof encodeHttpConnectRequest>[1]]> = [
    [
      "a host with CRLF (header injection)",
      { kind: "domain", host: "a\r\nX-Evil: 1", port: 80 },
      {},
    ],
    ["a host with a space", { kind: "domain", host: "a b", port: 80 }, {}],
    ["a host beyond ASCII", { kind: "domain", host: "\u00e9.example", port: 80 }, {}],
    ["port 65536", { kind: "domain", host: "example.com", port: 65536 }, {}],
    [
      "a username with a colon",
      { kind: "domain", host: "example.com", port: 80 },
      { credentials: { username: "a:b", password: "c" } },
    ],
    [
      "a user agent with CRLF",
      { kind: "domain", host: "example.com", port: 80 },
      { userAgent: "x\r\nX-Evil: 1" },
    ],
  ];
  for (const [name, target, options] of invalid) {
    test(`throws RangeError for ${name}`, () => {
      assert.throws(() => encodeHttpConnectRequest(target, options), RangeError);
    });
  }
});
