/**
 * Bytes captured from real clients and proxies on loopback, for codec tests
 * and for scripted clients in integration tests.
 *
 * - curl 7.88.1 (Debian 12) against a throwaway listener that logged every
 *   message and answered just enough to get the next one (method 00 or 02,
 *   auth `01 00`, then a failure reply). The URL each request came from is
 *   in its name.
 * - tinyproxy 1.11.1 (`tinyproxy -d -c conf`) answering
 *   `CONNECT 127.0.0.1:<port> HTTP/1.1`, with the tunnelled or body bytes
 *   that arrived right after the head.
 *
 * @module
 */
import type { HttpConnectResponse } from "../../src/protocol/http_connect.ts";
import type { Socks4Request } from "../../src/protocol/socks4.ts";
import type { Socks5Greeting, Socks5Request } from "../../src/protocol/socks5.ts";
import type { Vector } from "./codec_check.ts";

/** SOCKS5 greetings sent by curl. */
export const CAPTURED_SOCKS5_GREETINGS: readonly Vector<Socks5Greeting>[] = [
  {
    name: "curl 7.88 --socks5 greeting (no-auth and GSSAPI)",
    hex: "05 02 00 01",
    value: { methods: [0x00, 0x01] },
  },
  {
    name: "curl 7.88 -x socks5h://user:pass@ greeting",
    hex: "05 03 00 01 02",
    value: { methods: [0x00, 0x01, 0x02] },
  },
];

/** RFC 1929 requests sent by curl. */
export const CAPTURED_USERPASS_REQUESTS: readonly Vector<{ username: string; password: string }>[] = [
  {
    name: "curl 7.88 -x socks5h://user:pass@ auth request",
    hex: "01 04 75736572 04 70617373",
    value: { username: "user", password: "pass" },
  },
];

/** SOCKS5 requests sent by curl. */
export const CAPTURED_SOCKS5_REQUESTS: readonly Vector<Socks5Request>[] = [
  {
    name: "curl 7.88 --socks5 request (http://127.0.0.1:8080/)",
    hex: "05 01 00 01 7f000001 1f90",
    value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 8080 } },
  },
  {
    name: "curl 7.88 --socks5 request (http://[::1]:8080/)",
    hex: "05 01 00 04 00000000000000000000000000000001 1f90",
    value: { command: 1, target: { kind: "ipv6", host: "::1", port: 8080 } },
  },
  {
    name: "curl 7.88 --socks5-hostname request (http://example.com:8080/)",
    hex: "05 01 00 03 0b 6578616d706c652e636f6d 1f90",
    value: { command: 1, target: { kind: "domain", host: "example.com", port: 8080 } },
  },
  {
    name: "curl 7.88 -x socks5h:// request (http://localhost/)",
    hex: "05 01 00 03 09 6c6f63616c686f7374 0050",
    value: { command: 1, target: { kind: "domain", host: "localhost", port: 80 } },
  },
];

/** SOCKS4 and 4A requests sent by curl. */
export const CAPTURED_SOCKS4_REQUESTS: readonly Vector<Socks4Request>[] = [
  {
    name: "curl 7.88 --socks4 request (http://127.0.0.1:8080/)",
    hex: "04 01 1f90 7f000001 00",
    value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 8080 }, userId: "" },
  },
  {
    name: "curl 7.88 -x socks4://alice@ request (http://127.0.0.1/)",
    hex: "04 01 0050 7f000001 616c696365 00",
    value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 80 }, userId: "alice" },
  },
  {
    name: "curl 7.88 --socks4a request (http://example.com:8080/)",
    hex: "04 01 1f90 00000001 00 6578616d706c652e636f6d 00",
    value: { command: 1, target: { kind: "domain", host: "example.com", port: 8080 }, userId: "" },
  },
  {
    name: "curl 7.88 --socks4a request (http://127.0.0.1:8080/, literal sent as a name)",
    hex: "04 01 1f90 00000001 00 3132372e302e302e31 00",
    value: { command: 1, target: { kind: "domain", host: "127.0.0.1", port: 8080 }, userId: "" },
  },
  {
    name: "curl 7.88 --socks4a request (http://[::1]:8080/, literal sent as a name)",
    hex: "04 01 1f90 00000001 00 3a3a31 00",
    value: { command: 1, target: { kind: "domain", host: "::1", port: 8080 }, userId: "" },
  },
  {
    name: "curl 7.88 -x socks4a://alice@ request (http://localhost:443/)",
    hex: "04 01 01bb 00000001 616c696365 00 6c6f63616c686f7374 00",
    value: {
      command: 1,
      target: { kind: "domain", host: "localhost", port: 443 },
      userId: "alice",
    },
  },
];

/** An HTTP CONNECT response head as text, the bytes that followed it, and its decoding. */
export interface CapturedHttpResponse {
  name: string;
  head: string;
  rest: string;
  value: HttpConnectResponse;
}

/** Response heads sent by tinyproxy. */
export const CAPTURED_HTTP_CONNECT_RESPONSES: readonly CapturedHttpResponse[] = [
  {
    name: "tinyproxy 1.11.1 200 response, tunnel already sending",
    head: "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n",
    rest: "hello\n",
    value: {
      status: 200,
      reason: "Connection established",
      headers: [["Proxy-agent", "tinyproxy/1.11.1"]],
    },
  },
  {
    name: "tinyproxy 1.11.1 407 response (BasicAuth configured, no credentials sent)",
    head: "HTTP/1.0 407 Proxy Authentication Required\r\n" +
      "Server: tinyproxy/1.11.1\r\n" +
      "Content-Type: text/html\r\n" +
      'Proxy-Authenticate: Basic realm="Tinyproxy"\r\n' +
      "Connection: close\r\n\r\n",
    rest: '<?xml version="1.0" encoding="UTF-8" ?>\n',
    value: {
      status: 407,
      reason: "Proxy Authentication Required",
      headers: [
        ["Server", "tinyproxy/1.11.1"],
        ["Content-Type", "text/html"],
        ["Proxy-Authenticate", 'Basic realm="Tinyproxy"'],
        ["Connection", "close"],
      ],
    },
  },
  {
    name: "tinyproxy 1.11.1 403 response (port not in ConnectPort)",
    head: "HTTP/1.1 403 Access violation\r\n" +
      "Server: tinyproxy/1.11.1\r\n" +
      "Content-Type: text/html\r\n" +
      "Connection: close\r\n\r\n",
    rest: '<?xml version="1.0" encoding="UTF-8" ?>\n',
    value: {
      status: 403,
      reason: "Access violation",
      headers: [["Server", "tinyproxy/1.11.1"], ["Content-Type", "text/html"], [
        "Connection",
        "close",
      ]],
    },
  },
];
