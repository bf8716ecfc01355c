/**
 * The client side of an HTTP CONNECT tunnel (RFC 9110 §9.3.6, RFC 9112):
 * the request head sent to an HTTP proxy hop and the response head it
 * answers with.
 *
 * ```text
 * Request                                     Response
 * CONNECT host:port HTTP/1.1 CRLF             HTTP/1.x SP NNN SP reason CRLF
 * Host: host:port CRLF                        *( field-name ":" OWS field-value CRLF )
 * [Proxy-Authorization: Basic b64 CRLF]       CRLF
 * [User-Agent: agent CRLF]                    ...tunnelled bytes...
 * CRLF
 * ```
 *
 * IPv6 hosts are bracketed (`[::1]:443`). Any 2xx status means the tunnel
 * is open; the bytes after the response head already belong to it.
 *
 * @module
 */
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";
import { formatTarget, type Target } from "./target.ts";

/** A decoded response head. Header names keep their case; values are trimmed. */
export interface HttpConnectResponse {
  status: number;
  reason: string;
  headers: Array<[string, string]>;
}

/** Options for `encodeHttpConnectRequest`. */
export interface HttpConnectRequestOptions {
  /** Sent as `Proxy-Authorization: Basic base64(username:password)` (UTF-8). */
  credentials?: { username: string; password: string };
  /** Sent as the `User-Agent` header when given. */
  userAgent?: string;
}

/** Largest response head accepted, blank line included. */
const MAX_HEAD_LENGTH = 16 * 1024;

const STATUS_PREFIX = "HTTP/1.";
const STATUS_LINE = /^HTTP\/1\.\d (\d{3})(?: (.*))?$/;
/** An RFC 9110 token: the syntax of a field name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Most characters of a bad line quoted in an error message. */
const QUOTE_LENGTH = 80;
const LF = 0x0a;
const CR = 0x0d;

const UTF8_ENCODER = new TextEncoder();

/**
 * Encodes a CONNECT request head. Throws `RangeError` for a host that is
 * not visible ASCII, a port outside 0..65535, a username with `:`, or a
 * user agent with control characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeHttpConnectRequest({ kind: "ipv6", host: "::1", port: 443 });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
 * );
 * ```
 */
export function encodeHttpConnectRequest(
  target: Target,
  options: HttpConnectRequestOptions = {},
): Uint8Array {
  if (!Number.isInteger(target.port) || target.port < 0 || target.port > 0xffff) {
    throw new RangeError(
      `Cannot encode HTTP CONNECT request: port ${target.port} is not in 0..65535`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(target.host)) {
    const host = JSON.stringify(target.host);
    throw new RangeError(`Cannot encode HTTP CONNECT request: host ${host} is not visible ASCII`);
  }
  const authority = formatTarget(target);
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  const { credentials, userAgent } = options;
  if (credentials !== undefined) {
    if (credentials.username.includes(":")) {
      throw new RangeError("Cannot encode HTTP CONNECT request: username must not contain ':'");
    }
    const token = base64(`${credentials.username}:${credentials.password}`);
    head += `Proxy-Authorization: Basic ${token}\r\n`;
  }
  if (userAgent !== undefined) {
    if (!/^[\x20-\x7e\t]*$/.test(userAgent)) {
      throw new RangeError(
        "Cannot encode HTTP CONNECT request: user agent has characters other than printable ASCII",
      );
    }
    head += `User-Agent: ${userAgent}\r\n`;
  }
  return UTF8_ENCODER.encode(`${head}\r\n`);
}

/**
 * Decodes a response head up to and including its blank line; the bytes
 * after it are left to the caller. Lines may end in CRLF or a bare LF;
 * obsolete line folding is joined with one space. Throws `ProtocolError`
 * when the status line is not `HTTP/1.x NNN [reason]`, a header line has no
 * name, or the head exceeds 16 KiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const text = "HTTP/1.1 200 Connection established\r\n\r\ntunnelled";
 * assert.deepEqual(decodeHttpConnectResponse(new TextEncoder().encode(text)), {
 *   ok: true,
 *   value: { status: 200, reason: "Connection established", headers: [] },
 *   size: 39,
 * });
 * ```
 */
export function decodeHttpConnectResponse(bytes: Uint8Array): Decoded<HttpConnectResponse> {
  const prefixLength = Math.min(bytes.length, STATUS_PREFIX.length);
  for (let i = 0; i < prefixLength; i++) {
    if (bytes[i] !== STATUS_PREFIX.charCodeAt(i)) {
      throw new ProtocolError(
        `Cannot decode HTTP CONNECT response: it does not start with "${STATUS_PREFIX}"`,
      );
    }
  }
  const size = findHeadEnd(bytes);
  if (size < 0) {
    if (bytes.length >= MAX_HEAD_LENGTH) throw headTooLarge();
    return needBytes(bytes.length + 1);
  }
  if (size > MAX_HEAD_LENGTH) throw headTooLarge();
  const lines = latin1(bytes, size).split("\n");
  lines.length -= 2;
  const statusLine = stripCr(lines[0] ?? "");
  const match = STATUS_LINE.exec(statusLine);
  if (match === null) {
    throw new ProtocolError(
      `Cannot decode HTTP CONNECT response: status line ${quote(statusLine)} is malformed`,
    );
  }
  return {
    ok: true,
    value: { status: Number(match[1]), reason: match[2] ?? "", headers: parseHeaders(lines) },
    size,
  };
}

/** Index just past the first blank line (LF LF or LF CR LF), or -1. */
function findHeadEnd(bytes: Uint8Array): number {
  let from = 0;
  for (;;) {
    const lf = bytes.indexOf(LF, from);
    if (lf < 0 || lf >= MAX_HEAD_LENGTH) return -1;
    const next = bytes[lf + 1];
    if (next === LF) return lf + 2;
    if (next === CR && bytes[lf + 2] === LF) return lf + 3;
    from = lf + 1;
  }
}

function parseHeaders(lines: string[]): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = stripCr(lines[i] ?? "");
    const last = headers[headers.length - 1];
    if ((line.startsWith(" ") || line.startsWith("\t")) && last !== undefined) {
      last[1] = trimOws(`${last[1]} ${trimOws(line)}`);
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) {
      throw new ProtocolError(
        `Cannot decode HTTP CONNECT response: header line ${quote(line)} is malformed`,
      );
    }
    headers.push([name, trimOws(line.slice(colon + 1))]);
  }
  return headers;
}

function quote(line: string): string {
  return JSON.stringify(line.length > QUOTE_LENGTH ? `${line.slice(0, QUOTE_LENGTH)}...` : line);
}

function trimOws(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, "");
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

function latin1(bytes: Uint8Array, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[i] ?? 0);
  return text;
}

function base64(text: string): string {
  let binary = "";
  for (const byte of UTF8_ENCODER.encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function headTooLarge(): ProtocolError {
  return new ProtocolError(
    `Cannot decode HTTP CONNECT response: head is larger than ${MAX_HEAD_LENGTH} bytes`,
  );
}
