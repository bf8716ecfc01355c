/**
 * Property-based tests for every decoder and every configuration grammar:
 * random and mutated inputs (flipped, set, truncated, extended, inserted and
 * deleted bytes) never throw anything but `ProtocolError`, never read past
 * their input, decode the same whole and one byte at a time, and what
 * decodes re-encodes to a value that decodes the same (to the same bytes
 * where the encoding is canonical). The grammars never throw and report
 * every issue with its file, a line of the text and a severity.
 *
 * The properties run from a fixed seed so failures reproduce; set
 * `PROPERTY_SEED=N` to try another one, or `PROPERTY_SEED=random` for a
 * fresh one (fast-check prints the seed and path of any counterexample);
 * `PROPERTY_RUNS_SCALE=N` multiplies every run count (for a longer search).
 *
 * Complements the round-trip properties in `src/protocol/*_test.ts` and the
 * never-throw properties of `src/config/{hosts_access,rules}_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type Decoded, ProtocolError, type ProtocolErrorReply } from "../src/protocol/decoded.ts";
import {
  decodeSocks4Reply,
  decodeSocks4Request,
  encodeSocks4Reply,
  encodeSocks4Request,
} from "../src/protocol/socks4.ts";
import {
  decodeSocks5Greeting,
  decodeSocks5MethodSelection,
  decodeSocks5Reply,
  decodeSocks5Request,
  encodeSocks5Greeting,
  encodeSocks5MethodSelection,
  encodeSocks5Reply,
  encodeSocks5Request,
} from "../src/protocol/socks5.ts";
import { decodeSocks5Address, encodeSocks5Address } from "../src/protocol/socks5_address.ts";
import {
  decodeUserPassReply,
  decodeUserPassRequest,
  encodeUserPassReply,
  encodeUserPassRequest,
} from "../src/protocol/socks5_auth.ts";
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram } from "../src/protocol/socks5_udp.ts";
import { decodeHttpConnectResponse, type HttpConnectResponse } from "../src/protocol/http_connect.ts";
import {
  decodeProxyHeader,
  encodeProxyHeader,
  PROXY_TLV,
  PROXY_V2_SIGNATURE,
  type ProxyEndpoint,
  type ProxyHeader,
} from "../src/protocol/proxy_protocol.ts";
import type { Target } from "../src/protocol/target.ts";
import { formatIp } from "../src/net/address.ts";
import type { ConfigIssue } from "../src/config/config_issue.ts";
import { parseSrelayConf } from "../src/config/srelay_conf.ts";
import { parseSrelayPasswd } from "../src/config/passwd.ts";
import { parseUsersFile, userNameProblem } from "../src/config/users_file.ts";
import { parseHostPatternFile, parseHostsTable } from "../src/config/hosts_access.ts";
import { type DestinationRule, formatRule, parseRules } from "../src/config/rules.ts";
import { domainTargetArbitrary, ipv4TargetArbitrary, portArbitrary, targetArbitrary } from "./vectors/arbitraries.ts";
import { type Decoder, toHex } from "./vectors/codec_check.ts";

// ---- running properties ---------------------------------------------------------------

const SEED_TEXT = process.env.PROPERTY_SEED ?? "20240611";
const SEED = SEED_TEXT === "random" ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(SEED_TEXT);
if (!Number.isInteger(SEED)) throw new TypeError(`PROPERTY_SEED ${JSON.stringify(SEED_TEXT)} is not an integer`);

const RUNS_SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? "1");

/** Runs a property from the file's seed; fast-check reports the seed and path of a failure. */
function check<Ts>(property: fc.IRawProperty<Ts>, numRuns = 500): void {
  fc.assert(property, { seed: SEED, numRuns: Math.max(1, Math.round(numRuns * RUNS_SCALE)) });
}

// ---- bytes and mutations ---------------------------------------------------------------

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

const latin1Bytes = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

/** Bytes appended to an input to see whether a decoder looks past what it used. */
const JUNK = Uint8Array.of(0x00, 0xff, 0x0a, 0x0d, 0x05, 0x04, 0x01, 0x20);

/** One edit of a byte string; positions are taken modulo the length. */
type Mutation =
  | { readonly op: "flip"; readonly at: number; readonly mask: number }
  | { readonly op: "set"; readonly at: number; readonly value: number }
  | { readonly op: "truncate"; readonly at: number }
  | { readonly op: "extend"; readonly bytes: Uint8Array }
  | { readonly op: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: "delete"; readonly at: number; readonly count: number };

const interestingByte = fc.oneof(
  fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xfe, 0xff),
  fc.integer({ min: 0, max: 0xff }),
);
const position = fc.nat({ max: 1 << 16 });
const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: position, mask: fc.integer({ min: 1, max: 0xff }) }),
  fc.record({ op: fc.constant("set" as const), at: position, value: interestingByte }),
  fc.record({ op: fc.constant("truncate" as const), at: position }),
  fc.record({ op: fc.constant("extend" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant("insert" as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant("delete" as const), at: position, count: fc.integer({ min: 1, max: 4 }) }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes: Uint8Array = input.slice();
  for (const mutation of mutations) {
    if (mutation.op === "extend") {
      bytes = concat(bytes, mutation.bytes);
      continue;
    }
    const at = mutation.at % (bytes.length + 1);
    switch (mutation.op) {
      case "flip":
        if (at < bytes.length) bytes[at] = (bytes[at] as number) ^ mutation.mask;
        break;
      case "set":
        if (at < bytes.length) bytes[at] = mutation.value;
        break;
      case "truncate":
        bytes = bytes.slice(0, at);
        break;
      case "insert":
        bytes = concat(bytes.subarray(0, at), mutation.bytes, bytes.subarray(at));
        break;
      case "delete":
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + mutation.count));
        break;
    }
  }
  return bytes;
}

/**
 * Inputs for a decoder: random bytes, random bytes after a plausible start,
 * valid encodings and (most often) mutated valid encodings.
 */
function decoderInputs(valid: fc.Arbitrary<Uint8Array>, starts: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 48 }), weight: 1 },
    {
      arbitrary: fc.tuple(fc.constantFrom(...starts), fc.uint8Array({ maxLength: 64 })).map(([start, rest]) =>
        concat(start, rest)
      ),
      weight: 2,
    },
    { arbitrary: valid, weight: 1 },
    {
      arbitrary: fc.tuple(valid, fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 })).map(([bytes, edits]) =>
        mutate(bytes, edits)
      ),
      weight: 4,
    },
  );
}

// ---- the decoder contract ----------------------------------------------------------------

type Outcome<T> =
  | { readonly kind: "ok"; readonly value: T; readonly size: number }
  | { readonly kind: "need"; readonly need: number }
  | { readonly kind: "error"; readonly reply: ProtocolErrorReply };

/**
 * Decodes `bytes` and checks the result's shape: a value with
 * `0 <= size <= length`, a need above the length, or a `ProtocolError`
 * (anything else thrown fails the property).
 */
function outcome<T>(decode: Decoder<T>, bytes: Uint8Array): Outcome<T> {
  let result: Decoded<T>;
  try {
    result = decode(bytes);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    assert.match(error.message, /^Cannot decode [^:]+: \S/);
    return { kind: "error", reply: error.reply };
  }
  if (result.ok) {
    const { size } = result;
    assert.ok(Number.isInteger(size) && size >= 0 && size <= bytes.length, `size ${size} of ${bytes.length} bytes`);
    return { kind: "ok", value: result.value, size };
  }
  const { need } = result;
  assert.ok(Number.isInteger(need) && need > bytes.length, `need ${need} with ${bytes.length} bytes`);
  return { kind: "need", need };
}

/** `bytes` as a view into a larger buffer with junk before and after it. */
function embedded(bytes: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 2 * JUNK.length);
  buffer.set(JUNK);
  buffer.set(bytes, JUNK.length);
  buffer.set(JUNK, JUNK.length + bytes.length);
  return buffer.subarray(JUNK.length, JUNK.length + bytes.length);
}

/**
 * The decoder contract on one input:
 * - the outcome has the right shape, and is the same for a view into a
 *   larger buffer;
 * - a value decodes the same from exactly its `size` bytes and with junk
 *   after them; an error stays an error (with the same reply) when more
 *   bytes follow;
 * - fed one byte at a time, the prefixes give needs (non-decreasing, none
 *   beyond the value's size) until the outcome is reached, then the same
 *   outcome on every longer prefix.
 */
function assertDecoderContract<T>(decode: Decoder<T>, bytes: Uint8Array): Outcome<T> {
  const whole = outcome(decode, bytes);
  assert.deepEqual(outcome(decode, embedded(bytes)), whole, "decoding a view into a larger buffer");
  if (whole.kind === "ok") {
    const used = bytes.slice(0, whole.size);
    assert.deepEqual(outcome(decode, used), whole, "decoding exactly the bytes used");
    assert.deepEqual(outcome(decode, concat(used, JUNK)), whole, "decoding the bytes used followed by junk");
  } else if (whole.kind === "error") {
    assert.deepEqual(outcome(decode, concat(bytes, JUNK)), whole, "an error followed by junk");
  }
  let lastNeed = 0;
  for (let length = 0; length <= bytes.length; length++) {
    const prefix = outcome(decode, bytes.slice(0, length));
    if (prefix.kind === "need") {
      assert.ok(prefix.need >= lastNeed, `prefix of ${length} bytes: need ${prefix.need} after need ${lastNeed}`);
      lastNeed = prefix.need;
      if (whole.kind === "ok") assert.ok(prefix.need <= whole.size, `need ${prefix.need} beyond size ${whole.size}`);
      if (whole.kind === "need") assert.ok(prefix.need <= whole.need, `need ${prefix.need} beyond ${whole.need}`);
      continue;
    }
    assert.deepEqual(prefix, whole, `prefix of ${length} bytes`);
    if (prefix.kind === "ok") assert.equal(prefix.size, length, "a value decodes from no fewer bytes than it uses");
    for (let longer = length + 1; longer < bytes.length; longer++) {
      assert.deepEqual(outcome(decode, bytes.slice(0, longer)), whole, `prefix of ${longer} bytes`);
    }
    return whole;
  }
  assert.equal(whole.kind, "need");
  return whole;
}

/** How a decoded value is encoded again, and whether that must give back the very bytes. */
interface Reencoder<T> {
  encode(value: T): Uint8Array | null;
  /** True when `bytes` (exactly the bytes used) are the only encoding of `value`. */
  canonical(bytes: Uint8Array, value: T): boolean;
}

/** Registers the random/mutated-input property for one decoder, with its re-encoding check. */
function testDecoder<T>(
  name: string,
  decode: Decoder<T>,
  valid: fc.Arbitrary<Uint8Array>,
  starts: readonly Uint8Array[],
  reencoder: Reencoder<T>,
  numRuns = 500,
): void {
  test(`${name}: random and mutated bytes keep the decoder contract, and what decodes re-encodes`, () => {
    let decodedCount = 0;
    check(
      fc.property(decoderInputs(valid, starts), (bytes) => {
        const result = assertDecoderContract(decode, bytes);
        if (result.kind !== "ok") return;
        decodedCount++;
        const encoded = reencoder.encode(result.value);
        if (encoded === null) return;
        assert.deepEqual(decode(encoded), { ok: true, value: result.value, size: encoded.length }, "decode(encode)");
        if (reencoder.canonical(bytes.subarray(0, result.size), result.value)) {
          assert.equal(toHex(encoded), toHex(bytes.subarray(0, result.size)), "encode(decode) gives the bytes back");
        }
      }),
      numRuns,
    );
    assert.ok(decodedCount > numRuns * RUNS_SCALE / 10, `only ${decodedCount} inputs decoded`);
  });
}

// ---- SOCKS4 / 4a ---------------------------------------------------------------------------

const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const isUtf8 = (bytes: Uint8Array): boolean => {
  try {
    FATAL_UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
};

const utf8Text = (maxBytes: number, minLength = 0) =>
  fc.string({ unit: "grapheme", minLength, maxLength: 40 }).filter((text) =>
    new TextEncoder().encode(text).length <= maxBytes
  );

describe("SOCKS4 and 4a", () => {
  const socks4Target = fc.oneof(
    ipv4TargetArbitrary.filter((target) => !/^0\.0\.0\.[1-9]/.test(target.host)),
    domainTargetArbitrary,
    fc.tuple(fc.constantFrom("0.0.0.0", "255.255.255.255"), portArbitrary).map(([host, port]): Target => ({
      kind: "ipv4",
      host,
      port,
    })),
  );
  const userId = fc.oneof(
    utf8Text(255).filter((text) => !text.includes("\0")),
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 255 }),
  );
  const request = fc.tuple(fc.constantFrom(1 as const, 2 as const), socks4Target, userId);
  const validRequest = request.map(([command, target, userId]) => encodeSocks4Request(command, target, userId));
  const requestStarts = [Uint8Array.of(4), Uint8Array.of(4, 1), Uint8Array.of(4, 2, 0, 80, 0, 0, 0, 7)];

  testDecoder("decodeSocks4Request", decodeSocks4Request, validRequest, requestStarts, {
    encode: (value) => {
      // A USERID of invalid UTF-8 decodes to U+FFFD, whose UTF-8 may not fit.
      if (new TextEncoder().encode(value.userId).length > 255) return null;
      return encodeSocks4Request(value.command, value.target, value.userId);
    },
    canonical: (bytes, value) => {
      const userEnd = bytes.indexOf(0, 8);
      const markerIsOne = value.target.kind !== "domain" || bytes[7] === 1;
      return markerIsOne && isUtf8(bytes.subarray(8, userEnd));
    },
  });

  const validReply = fc.tuple(fc.integer({ min: 0, max: 0xff }), ipv4TargetArbitrary).map(([code, target]) =>
    encodeSocks4Reply(code, target)
  );
  testDecoder("decodeSocks4Reply", decodeSocks4Reply, validReply, [Uint8Array.of(0), Uint8Array.of(4)], {
    encode: (value) => encodeSocks4Reply(value.code, value.bound),
    canonical: (bytes) => bytes[0] === 0,
  });

  test("encodeSocks4Reply() sends 0.0.0.0:0 for a bound address that is not IPv4, and it decodes so", () => {
    check(
      fc.property(
        fc.integer({ min: 0, max: 0xff }),
        fc.oneof(
          fc.constant(null),
          domainTargetArbitrary.filter((target) => !/^[0-9.]+$/.test(target.host)),
          fc.constantFrom({ host: "2001:db8::1", port: 80 }, { host: "::", port: 1 }),
        ),
        (code, bound) => {
          assert.deepEqual(decodeSocks4Reply(encodeSocks4Reply(code, bound)), {
            ok: true,
            value: { code, bound: { host: "0.0.0.0", port: 0 } },
            size: 8,
          });
        },
      ),
      100,
    );
  });
});

// ---- SOCKS5 ----------------------------------------------------------------------------------

describe("SOCKS5", () => {
  const methods = fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: 1, maxLength: 255 });
  testDecoder(
    "decodeSocks5Greeting",
    decodeSocks5Greeting,
    methods.map(encodeSocks5Greeting),
    [Uint8Array.of(5), Uint8Array.of(5, 1), Uint8Array.of(5, 3)],
    { encode: (value) => encodeSocks5Greeting(value.methods), canonical: () => true },
  );

  testDecoder(
    "decodeSocks5MethodSelection",
    decodeSocks5MethodSelection,
    fc.integer({ min: 0, max: 0xff }).map(encodeSocks5MethodSelection),
    [Uint8Array.of(5)],
    { encode: (value) => encodeSocks5MethodSelection(value.method), canonical: () => true },
    100,
  );

  const command = fc.constantFrom(1 as const, 2 as const, 3 as const);
  const addressStarts = (head: readonly number[]) => [
    Uint8Array.of(...head),
    Uint8Array.of(...head, 0x01),
    Uint8Array.of(...head, 0x03),
    Uint8Array.of(...head, 0x04),
  ];
  testDecoder(
    "decodeSocks5Request",
    decodeSocks5Request,
    fc.tuple(command, targetArbitrary).map(([cmd, target]) => encodeSocks5Request(cmd, target)),
    addressStarts([5, 1, 0]),
    {
      encode: (value) => encodeSocks5Request(value.command, value.target),
      canonical: (bytes) => bytes[2] === 0,
    },
  );

  testDecoder(
    "decodeSocks5Reply",
    decodeSocks5Reply,
    fc.tuple(fc.integer({ min: 0, max: 0xff }), fc.option(targetArbitrary)).map(([code, bound]) =>
      encodeSocks5Reply(code, bound)
    ),
    addressStarts([5, 0, 0]),
    {
      encode: (value) => encodeSocks5Reply(value.code, value.bound),
      canonical: (bytes) => bytes[2] === 0,
    },
  );

  const decodeAddress = (bytes: Uint8Array) => decodeSocks5Address(bytes, 0);
  testDecoder(
    "decodeSocks5Address",
    decodeAddress,
    targetArbitrary.map(encodeSocks5Address),
    addressStarts([]),
    { encode: encodeSocks5Address, canonical: () => true },
  );

  test("decodeSocks5Address() at an offset is the decoding of the bytes from there, need counted from 0", () => {
    check(
      fc.property(
        fc.uint8Array({ maxLength: 8 }),
        decoderInputs(targetArbitrary.map(encodeSocks5Address), addressStarts([])),
        (before, bytes) => {
          const alone = outcome(decodeAddress, bytes);
          const atOffset = outcome((all) => decodeSocks5Address(all, before.length), concat(before, bytes));
          const shifted = alone.kind === "need" ? { kind: "need", need: alone.need + before.length } : alone;
          assert.deepEqual(atOffset, shifted);
        },
      ),
    );
  });
});

// ---- RFC 1929 --------------------------------------------------------------------------------

describe("RFC 1929 username/password", () => {
  const field = utf8Text(255, 1);
  testDecoder(
    "decodeUserPassRequest",
    decodeUserPassRequest,
    fc.tuple(field, field).map(([username, password]) => encodeUserPassRequest(username, password)),
    [Uint8Array.of(1), Uint8Array.of(1, 1), Uint8Array.of(1, 2, 0x61, 0x62, 3)],
    { encode: (value) => encodeUserPassRequest(value.username, value.password), canonical: () => true },
  );

  testDecoder(
    "decodeUserPassReply",
    decodeUserPassReply,
    fc.boolean().map(encodeUserPassReply),
    [Uint8Array.of(1), Uint8Array.of(5)],
    {
      encode: (value) => encodeUserPassReply(value.success),
      canonical: (bytes) => bytes[0] === 1 && (bytes[1] === 0 || bytes[1] === 1),
    },
    100,
  );
});

// ---- SOCKS5 UDP header ---------------------------------------------------------------------------

describe("SOCKS5 UDP datagram header", () => {
  const datagram = fc.tuple(targetArbitrary, fc.uint8Array({ maxLength: 32 }), fc.integer({ min: 0, max: 0xff }));
  const valid = datagram.map(([target, payload, fragment]) => encodeSocks5UdpDatagram(target, payload, fragment));
  const starts = [
    Uint8Array.of(0, 0, 0),
    Uint8Array.of(0, 0, 0, 1),
    Uint8Array.of(0, 0, 0, 3),
    Uint8Array.of(0, 0, 1, 4),
  ];

  test("random and mutated datagrams decode or throw ProtocolError; the payload is the rest of the datagram", () => {
    let decodedCount = 0;
    check(fc.property(decoderInputs(valid, starts), (bytes) => {
      let decoded;
      try {
        decoded = decodeSocks5UdpDatagram(bytes);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, String(error));
        assert.match(error.message, /^Cannot decode [^:]+: \S/);
        assert.throws(() => decodeSocks5UdpDatagram(embedded(bytes)), ProtocolError);
        return;
      }
      decodedCount++;
      const header = decodeSocks5Address(bytes, 3);
      assert.ok(header.ok);
      assert.deepEqual(decoded, {
        fragment: bytes[2],
        target: header.value,
        payload: bytes.subarray(3 + header.size),
      });
      // The payload is a view of the datagram's own tail, not of the buffer around it.
      const inBuffer = decodeSocks5UdpDatagram(embedded(bytes));
      assert.deepEqual(inBuffer, decoded);
      assert.equal(inBuffer.payload.byteLength, bytes.length - 3 - header.size);
      // Re-encoding gives the datagram back, RSV aside.
      const encoded = encodeSocks5UdpDatagram(decoded.target, decoded.payload, decoded.fragment);
      assert.deepEqual(decodeSocks5UdpDatagram(encoded), decoded);
      if (bytes[0] === 0 && bytes[1] === 0) assert.equal(toHex(encoded), toHex(bytes));
    }));
    assert.ok(decodedCount > 30 * RUNS_SCALE, `only ${decodedCount} datagrams decoded`);
  });
});

// ---- HTTP CONNECT response ------------------------------------------------------------------------

describe("HTTP CONNECT response", () => {
  const latin1Char = (min: number, max: number) => fc.integer({ min, max }).map((code) => String.fromCharCode(code));
  const visible = fc.oneof(latin1Char(0x21, 0x7e), latin1Char(0x80, 0xff));
  /** Text without blanks at either end, words separated by single spaces. */
  const words = (maxWords: number) =>
    fc.array(fc.string({ unit: visible, minLength: 1, maxLength: 8 }), { maxLength: maxWords }).map((list) =>
      list.join(" ")
    );
  const token = fc.string({
    unit: fc.constantFrom(..."!#$%&'*+.^_`|~0123456789AZaz-Proxy"),
    minLength: 1,
    maxLength: 12,
  });
  const eol = fc.constantFrom("\r\n", "\n");
  /** A header: its name, the parts of its value (more than one part is written with obs-fold), line ends. */
  const header = fc.record({
    name: token,
    parts: fc.array(words(3).filter((text) => text !== ""), { maxLength: 3 }),
    space: fc.constantFrom("", " ", "\t", "  "),
    fold: fc.constantFrom(" ", "\t", " \t "),
    eols: fc.array(eol, { minLength: 3, maxLength: 3 }),
  });
  const response = fc.record({
    minor: fc.integer({ min: 0, max: 9 }),
    status: fc.integer({ min: 100, max: 999 }),
    reason: fc.option(fc.string({ unit: fc.oneof(latin1Char(0x20, 0x7e), latin1Char(0x80, 0xff)), maxLength: 30 })),
    eol,
    headers: fc.array(header, { maxLength: 5 }),
    end: eol,
  });
  type ResponseSpec = typeof response extends fc.Arbitrary<infer R> ? R : never;

  function writeResponse(spec: ResponseSpec): { text: string; value: HttpConnectResponse } {
    let text = `HTTP/1.${spec.minor} ${spec.status}${spec.reason === null ? "" : ` ${spec.reason}`}${spec.eol}`;
    const headers: Array<[string, string]> = [];
    for (const { name, parts, space, fold, eols } of spec.headers) {
      text += `${name}:${space}${parts[0] ?? ""}${eols[0]}`;
      for (let i = 1; i < parts.length; i++) text += `${fold}${parts[i]}${eols[i] ?? "\r\n"}`;
      headers.push([name, parts.join(" ")]);
    }
    text += spec.end;
    return { text, value: { status: spec.status, reason: spec.reason ?? "", headers } };
  }

  /** The canonical head of a decoded response (CRLF line ends, no folding). */
  function reencode(value: HttpConnectResponse): Uint8Array {
    const status = String(value.status).padStart(3, "0");
    const lines = [`HTTP/1.1 ${status} ${value.reason}`, ...value.headers.map(([n, v]) => `${n}: ${v}`)];
    return latin1Bytes(`${lines.join("\r\n")}\r\n\r\n`);
  }

  test("a written response head decodes to its status, reason and headers, whatever follows it", () => {
    check(fc.property(response, fc.uint8Array({ maxLength: 16 }), (spec, tunnelled) => {
      const { text, value } = writeResponse(spec);
      const head = latin1Bytes(text);
      assert.deepEqual(decodeHttpConnectResponse(concat(head, tunnelled)), { ok: true, value, size: head.length });
    }));
  });

  testDecoder(
    "decodeHttpConnectResponse",
    decodeHttpConnectResponse,
    response.map((spec) => latin1Bytes(writeResponse(spec).text)),
    [latin1Bytes("HTTP/1."), latin1Bytes("HTTP/1.1 200 OK\r\n"), latin1Bytes("HTTP/1.0 407 x\nA: b\n")],
    { encode: reencode, canonical: () => false },
    300,
  );

  test("a head is read up to 16 KiB, blank line included, and refused beyond", () => {
    const LIMIT = 16 * 1024;
    check(
      fc.property(fc.integer({ min: -3, max: 3 }), eol, (delta, end) => {
        const start = "HTTP/1.1 200 OK\r\nX: ";
        const size = LIMIT + delta;
        const head = latin1Bytes(`${start}${"a".repeat(size - start.length - 2 - end.length)}\r\n${end}`);
        assert.equal(head.length, size);
        const whole = outcome(decodeHttpConnectResponse, concat(head, JUNK));
        assert.deepEqual(whole.kind, size <= LIMIT ? "ok" : "error");
        const cut = outcome(decodeHttpConnectResponse, head.subarray(0, size - 1));
        assert.equal(cut.kind, size - 1 < LIMIT ? "need" : "error");
      }),
      30,
    );
  });
});

// ---- PROXY protocol v1 and v2 ------------------------------------------------------------------------

describe("PROXY protocol", () => {
  const endpoint = (family: 4 | 6): fc.Arbitrary<ProxyEndpoint> =>
    fc.tuple(fc.bigInt({ min: 0n, max: (1n << (family === 4 ? 32n : 128n)) - 1n }), portArbitrary).map((
      [value, port],
    ) => ({ host: formatIp({ family, value }), port }));
  const tlv = fc.record({
    type: fc.integer({ min: 0, max: 0xff }).filter((type) => type !== PROXY_TLV.CRC32C),
    value: fc.uint8Array({ maxLength: 24 }),
  });
  const proxied = (version: 1 | 2): fc.Arbitrary<ProxyHeader> =>
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
        tlvs: version === 1 ? fc.constant([]) : fc.array(tlv, { maxLength: 3 }),
      })
    );
  const headerArbitrary: fc.Arbitrary<ProxyHeader> = fc.oneof(
    proxied(1),
    proxied(2),
    fc.constant({ version: 1 as const, command: "unknown" as const, tlvs: [] }),
    fc.array(tlv, { maxLength: 2 }).map((tlvs) => ({ version: 2 as const, command: "unknown" as const, tlvs })),
    fc.constant({ version: 2 as const, command: "local" as const }),
  );
  const valid = fc.tuple(headerArbitrary, fc.boolean()).map(([header, crc32c]) =>
    encodeProxyHeader(header, { crc32c: crc32c && header.version === 2 && header.command !== "local" })
  );
  const v1 = (text: string) => latin1Bytes(text);
  const starts = [
    v1("PROXY "),
    v1("PROXY TCP4 "),
    v1("PROXY TCP6 ::1 "),
    v1("PROXY UNKNOWN"),
    concat(PROXY_V2_SIGNATURE, Uint8Array.of(0x21, 0x11, 0x00, 0x0c)),
    concat(PROXY_V2_SIGNATURE, Uint8Array.of(0x21, 0x21, 0x00, 0x24)),
    concat(PROXY_V2_SIGNATURE, Uint8Array.of(0x20, 0x00, 0x00, 0x00)),
  ];

  testDecoder("decodeProxyHeader", decodeProxyHeader, valid, starts, {
    encode: (header) => encodeProxyHeader(header),
    // v2 PROXY over IPv4, IPv6 or UNSPEC, and v2 LOCAL without addresses, have one encoding.
    canonical: (bytes, header) => {
      if (header.version !== 2) return false;
      const family = bytes[13] as number;
      if (header.command === "local") return family === 0 && bytes.length === 16;
      return family !== 0x31 && family !== 0x32;
    },
  });
});

// ---- configuration grammars ------------------------------------------------------------------------

/** Every issue names the file, a line of the text (or 0), a severity and a one-line message. */
function assertIssues(issues: readonly ConfigIssue[], text: string, file: string): void {
  const lineCount = text.split("\n").length;
  for (const issue of issues) {
    assert.equal(issue.file, file);
    assert.ok(Number.isInteger(issue.line) && issue.line >= 0 && issue.line <= lineCount, `line ${issue.line}`);
    assert.ok(issue.severity === "error" || issue.severity === "warning", issue.severity);
    assert.ok(typeof issue.message === "string" && issue.message.length > 0, "empty message");
    assert.ok(!issue.message.includes("\n"), `message on more than one line: ${JSON.stringify(issue.message)}`);
  }
}

const errorLines = (issues: readonly ConfigIssue[]) =>
  new Set(issues.filter((issue) => issue.severity === "error").map((issue) => issue.line));

/** Text built from grammar words, arbitrary (also non-ASCII and unpaired-surrogate) strings and separators. */
function grammarText(wordList: readonly string[], separators: readonly string[]): fc.Arbitrary<string> {
  const word = fc.oneof(
    { arbitrary: fc.constantFrom(...wordList), weight: 6 },
    { arbitrary: fc.string({ maxLength: 6 }), weight: 2 },
    { arbitrary: fc.string({ unit: "grapheme", maxLength: 4 }), weight: 1 },
    { arbitrary: fc.string({ unit: "binary", maxLength: 3 }), weight: 1 },
  );
  return fc.tuple(fc.boolean(), fc.array(fc.tuple(word, fc.constantFrom(...separators)), { maxLength: 30 })).map((
    [bom, pairs],
  ) => (bom ? "\uFEFF" : "") + pairs.flat().join(""));
}

const textMutation = fc.tuple(
  fc.nat(1 << 16),
  fc.nat(8),
  fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("\n", "\r\n", "#", ";", "\\\n", "\u00a0", "\uFEFF")),
);

/** Valid text with a few characters deleted and strings inserted. */
function mutatedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(textMutation, { maxLength: 5 })).map(([text, edits]) => {
    for (const [at, remove, insert] of edits) {
      const index = at % (text.length + 1);
      text = text.slice(0, index) + insert + text.slice(index + remove);
    }
    return text;
  });
}

const SEPARATORS = [" ", " ", " ", "\t", ",", ";", "#", " # ", "\n", "\n", "\r\n", "\u00a0", "  "];
const FILE = "/etc/srelay/test-file";

describe("srelay.conf", () => {
  const words = [
    "*",
    "*.corp.com",
    "a*b",
    "example.com",
    ".Example.COM.",
    "10.0.0.0/8",
    "10.1.1.0/25",
    "192.168.1.1/255.255.255.0",
    "10.0.0.0/255.0.255.0",
    "0.0.0.0",
    "0.0.0.0/8",
    "10.0.0.0/0",
    "10.0.0.0/",
    "10.0.0.0/33",
    "[2001:db8::]/32",
    "[::]/0",
    "[2001:db8::]/1.2.3.4",
    "2001:db8::1",
    "[fe80::1%eth0]",
    "[::1",
    "[::1/64]",
    "1.2.3",
    "256.1.1.1",
    "a:b",
    "any",
    "anyway",
    "80",
    "1024-",
    "-511",
    "80-79",
    "99999",
    "443/T",
    "53/U",
    "80/tcp",
    "80/X",
    "1080/H",
    "8080/HTTP",
    "1080/4",
    "1080/5",
    "1080/s",
    "1080/Q",
    "0",
    "+1",
    "-1",
    "fw",
    "[::1]",
    "[1.2.3.4]",
    "proxy.example",
    "x".repeat(256),
  ];
  const validLine = fc.tuple(
    fc.constantFrom("*", "example.com", ".example.com", "10.1.1.0/25", "[2001:db8::]/32", "0.0.0.0"),
    fc.constantFrom("any", "80", "1024-65535", "443/T", "53/U"),
    fc.array(
      fc.tuple(
        fc.constantFrom("fw", "10.0.0.1", "[::1]", "proxy.example"),
        fc.constantFrom("1080", "8080/H", "1080/5", "1080/4"),
      ),
      {
        maxLength: 3,
      },
    ),
    fc.option(fc.constantFrom("lasthop", "192.0.2.1")),
  ).map(([destination, ports, hops, last]) =>
    [destination, ports, ...hops.flat(), ...(last === null ? [] : [last])].join(" ")
  );
  const validFile = fc.array(fc.oneof(validLine, fc.constantFrom("# comment", "", "; note")), { maxLength: 6 }).map((
    lines,
  ) => lines.join("\n"));
  const texts = fc.oneof(grammarText(words, SEPARATORS), mutatedText(validFile));

  test("random and mutated files never throw; rules and issues are well-formed, each line read on its own", () => {
    check(fc.property(texts, (text) => {
      const conf = parseSrelayConf(text, FILE);
      assertIssues(conf.issues, text, FILE);
      const lines = text.replace(/^\uFEFF/, "").split("\n");
      const errors = errorLines(conf.issues);
      let previous = 0;
      for (const rule of conf.rules) {
        assert.ok(rule.line > previous && rule.line <= lines.length, `rule on line ${rule.line}`);
        previous = rule.line;
        assert.ok(!errors.has(rule.line), `rule kept from line ${rule.line} with an error`);
        assert.ok(rule.ports.low >= 0 && rule.ports.low <= rule.ports.high && rule.ports.high <= 65535);
        for (const hop of rule.hops) assert.ok(hop.host !== "" && hop.port >= 1 && hop.port <= 65535);
        if (rule.destination.kind === "ipv4") assert.ok(rule.destination.prefix <= 32);
        if (rule.destination.kind === "ipv6") assert.ok(rule.destination.prefix <= 128);
        // Lines are independent: the line alone (after a BOM, so that a second BOM stays) gives the same rule and issues.
        const alone = parseSrelayConf(`\uFEFF${lines[rule.line - 1]}`, FILE);
        assert.deepEqual(alone.rules, [{ ...rule, line: 1 }]);
        assert.deepEqual(
          alone.issues,
          conf.issues.filter((issue) => issue.line === rule.line).map((issue) => ({ ...issue, line: 1 })),
        );
      }
    }));
  });
});

describe("srelay.passwd", () => {
  const words = [
    "*",
    "192.168.1.1",
    "2.2.2.100/10080",
    "[2001:db8::1]/1080",
    "[2001:db8::1",
    "2001:db8::1",
    "host.example/0",
    ".example.com",
    "host/99999",
    "host/x",
    "1.2.3.4.5",
    "alice",
    "s3cret",
    '%"aXhe',
    "x".repeat(256),
  ];
  const validLine = fc.tuple(
    fc.constantFrom("*", "192.168.1.1", "2.2.2.100/10080", "[2001:db8::1]/1080", "proxy.example", ".example.com"),
    fc.stringMatching(/^[A-Za-z0-9%"'!@._-]{1,12}$/),
    fc.stringMatching(/^[A-Za-z0-9%"'!@._-]{1,12}$/),
  ).map((fields) => fields.join(" "));
  const validFile = fc.array(fc.oneof(validLine, fc.constantFrom("# proxy user password", "")), { maxLength: 6 }).map((
    lines,
  ) => lines.join("\n"));

  test("random and mutated files never throw; entries and issues are well-formed", () => {
    check(fc.property(fc.oneof(grammarText(words, SEPARATORS), mutatedText(validFile)), (text) => {
      const passwd = parseSrelayPasswd(text, FILE);
      assertIssues(passwd.issues, text, FILE);
      const lines = text.replace(/^\uFEFF/, "").split("\n");
      const errors = errorLines(passwd.issues);
      for (const entry of passwd.entries) {
        assert.ok(entry.line >= 1 && entry.line <= lines.length && !errors.has(entry.line));
        assert.ok(entry.host !== "" && entry.port >= 0 && entry.port <= 65535);
        for (const secret of [entry.username, entry.password]) {
          assert.ok(secret !== "" && new TextEncoder().encode(secret).length <= 255);
          assert.doesNotMatch(secret, /[ \t,;#\r\n]/);
        }
        const alone = parseSrelayPasswd(`\uFEFF${lines[entry.line - 1]}`, FILE);
        assert.deepEqual(alone.entries, [{ ...entry, line: 1 }]);
      }
    }));
  });

  test("issue messages never contain a user name or password", () => {
    // Credentials are marked with upper-case runs no host field or message text contains.
    const secret = fc.oneof(
      fc.stringMatching(/^Q[A-Z]{6}[a-z0-9!%"']{0,6}$/),
      fc.stringMatching(/^Q[A-Z]{6}$/).map((mark) => mark + "x".repeat(250)),
    );
    const host = fc.constantFrom("*", "10.0.0.1", "host.example/1080", "[::1]/0", "[::1", "h/99999", "h/x", "a:b");
    // After the host field (which ends only at a blank or ','), '#' and ';' separate fields too.
    const line = fc.tuple(
      host,
      fc.constantFrom(" ", "\t", ","),
      fc.array(fc.tuple(secret, fc.constantFrom(" ", "\t", ",", ";", "#", " ; ")), { maxLength: 4 }),
    ).map(([first, separator, rest]) => ({
      text: first + separator + rest.flat().join(""),
      secrets: rest.map(([s]) => s),
    }));
    check(fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (list) => {
      const text = list.map((l) => l.text).join("\n");
      const { issues } = parseSrelayPasswd(text, FILE);
      assertIssues(issues, text, FILE);
      for (const issue of issues) {
        for (const secret of list.flatMap((l) => l.secrets)) {
          assert.ok(!issue.message.includes(secret.slice(0, 7)), `${JSON.stringify(issue.message)} names a credential`);
        }
      }
    }));
  });
});

describe("users file", () => {
  const BCRYPT = "$2y$10$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K";
  const SHA512 = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
  const words = [
    "alice:",
    "bob",
    ":",
    "!",
    "*",
    BCRYPT,
    `!${BCRYPT}`,
    "$2y$03$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K",
    "$2y$31$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K",
    SHA512,
    "$6$rounds=9999999999$salt$",
    "$5$rounds=1000$salt$x",
    "$1$abc$def",
    "$apr1$x$y",
    "{SHA}abc",
    "$argon2id$v=19",
    "#",
    ";",
    "x".repeat(256),
  ];
  const name = fc.stringMatching(/^[A-Za-z0-9._@-]{1,10}$/);
  const validFile = fc.array(
    fc.oneof(
      fc.tuple(name, fc.constantFrom(BCRYPT, SHA512, `!${BCRYPT}`, "*", "!")).map(([user, hash]) => `${user}:${hash}`),
      fc.constantFrom("# users", "", "  ; note"),
    ),
    { maxLength: 6 },
  ).map((lines) => lines.join("\n"));

  test("random and mutated files never throw; users and issues are well-formed", () => {
    check(fc.property(fc.oneof(grammarText(words, [...SEPARATORS, ":", ":"]), mutatedText(validFile)), (text) => {
      const file = parseUsersFile(text, FILE);
      assertIssues(file.issues, text, FILE);
      const errors = errorLines(file.issues);
      const lineCount = text.split("\n").length;
      for (const [user, entry] of file.users) {
        assert.equal(entry.user, user);
        assert.equal(userNameProblem(user), null);
        assert.ok(entry.line >= 1 && entry.line <= lineCount && !errors.has(entry.line));
        assert.ok(entry.locked || entry.scheme !== null);
      }
      const noUsers = file.issues.filter((issue) => issue.line === 0);
      assert.equal(noUsers.length, file.users.size === 0 && errors.size === 0 ? 1 : 0);
    }));
  });

  test("issue messages never contain the hash field (it may be a password)", () => {
    const field = fc.oneof(
      fc.stringMatching(/^Q[A-Z]{6}[a-z0-9$./]{0,20}$/),
      fc.stringMatching(/^\$(2y|2a|5|6|1|2x|y)\$Q[A-Z]{6}[a-z0-9$./]{0,60}$/),
      fc.stringMatching(/^!Q[A-Z]{6}$/),
    );
    const line = fc.tuple(fc.constantFrom("alice", "bob", "carol", " dave", "#x", "a b"), field);
    check(fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (lines) => {
      const text = lines.map(([user, hash]) => `${user}:${hash}`).join("\n");
      const { issues } = parseUsersFile(text, FILE);
      assertIssues(issues, text, FILE);
      for (const issue of issues) {
        for (const [, hash] of lines) {
          const mark = /Q[A-Z]{6}/.exec(hash)?.[0] as string;
          assert.ok(!issue.message.includes(mark), `${JSON.stringify(issue.message)} repeats a hash`);
        }
      }
    }));
  });
});

describe("hosts.allow / hosts.deny", () => {
  const words = [
    "ALL",
    "EXCEPT",
    "LOCAL",
    "KNOWN",
    "UNKNOWN",
    "PARANOID",
    "srelay",
    "srelay@10.0.0.1",
    "user@host",
    "@netgroup",
    ":",
    "\\:",
    "allow",
    "deny",
    "spawn (echo x)",
    "10.0.0.0/255.0.0.0",
    "10.0.0.1/255.0.255.0",
    "192.168.",
    ".example.com",
    "[fe80::]/10",
    "[::ffff:1.2.3.4]/128",
    "[::1",
    "1.2.3.4/33",
    "*.example.com",
    "?",
    "/etc/srelay.clients",
    ".1.2",
  ];
  const separators = [...SEPARATORS, ": ", " : ", "\\\n", "\\\r\n"];
  const validTable = fc.array(
    fc.constantFrom(
      "srelay: 192.168. [fe80::]/10 .example.com EXCEPT 192.168.1.9 : deny",
      "ALL EXCEPT sshd: 10.0.0.0/255.0.0.0",
      "srelay@0.0.0.0: alice@.example.com, LOCAL : allow",
      "# comment",
      "srelay: \\\n  10.0.0.0/8",
      "",
    ),
    { maxLength: 6 },
  ).map((lines) => lines.join("\n"));

  test("random non-ASCII and mutated tables never throw; issues are well-formed warnings", () => {
    check(fc.property(fc.oneof(grammarText(words, separators), mutatedText(validTable)), (text) => {
      const table = parseHostsTable(text, FILE);
      assertIssues(table.issues, text, FILE);
      for (const issue of table.issues) assert.equal(issue.severity, "warning");
      const lineCount = text.split("\n").length;
      for (const rule of table.rules) assert.ok(rule.line >= 1 && rule.line <= lineCount);
      const patterns = parseHostPatternFile(text, FILE);
      assertIssues(patterns.issues, text, FILE);
    }));
  });
});

describe("rules file", () => {
  const words = [
    "pass",
    "block",
    "Block",
    "from",
    "to",
    "port",
    "command",
    "user",
    "connect",
    "bind,udp",
    "10.0.0.0/8",
    "10.0.0.1/255.0.0.0",
    "[fd00::1]/8",
    "[::ffff:10.0.0.0]/104",
    "[::1]",
    "::1",
    "example.com",
    ".example.com",
    "Example.COM.",
    "*.example.com",
    "80",
    "80-90",
    "90-80",
    "65536",
    "alice,bob",
    "alice , bob",
    "#",
  ];
  const validFile = fc.array(
    fc.constantFrom(
      "block to .example.com port 25",
      "pass from 10.0.0.0/8 to [2001:db8::]/32 command connect,udp user alice,bob",
      "block from 192.168.0.0/16 port 1-1023",
      "# comment",
      "pass to example.com",
      "",
    ),
    { maxLength: 6 },
  ).map((lines) => lines.join("\n"));
  const withoutPlace = ({ file: _file, line: _line, ...rest }: DestinationRule) => rest;

  test("random non-ASCII and mutated files never throw; every rule read formats and reads back the same", () => {
    check(fc.property(fc.oneof(grammarText(words, SEPARATORS), mutatedText(validFile)), (text) => {
      const parsed = parseRules(text, FILE);
      assertIssues(parsed.issues, text, FILE);
      assert.equal(parsed.ok, errorLines(parsed.issues).size === 0);
      // A rejected file's rules are not returned; read each line alone to reach them.
      const lines = text.replace(/^\uFEFF/, "").split("\n");
      for (const line of lines) {
        const alone = parseRules(`\uFEFF${line}`, FILE);
        if (!alone.ok) continue;
        for (const rule of alone.rules) {
          const again = parseRules(formatRule(rule), FILE);
          assert.ok(again.ok, JSON.stringify(again.issues));
          assert.deepEqual(again.issues, []);
          assert.deepEqual(again.rules.map(withoutPlace), [withoutPlace(rule)]);
        }
      }
    }));
  });
});
