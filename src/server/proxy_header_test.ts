// The PROXY protocol admitter in a real SocksServer on the memory runtime:
// trusted and untrusted peers, the address every later stage sees
// (tcp_wrappers, router, authorizer, logs, records), bad, truncated, slow
// and missing headers, v2 LOCAL, and a listener that keeps serving.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hostsAccessAdmitter, openHostsAccess } from "../acl/hosts_access.ts";
import { parseCidr } from "../net/address.ts";
import { encodeProxyHeader, type ProxyHeader } from "../protocol/proxy_protocol.ts";
import type { NetAddress } from "../runtime/types.ts";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { type HarnessOptions, type ServerHarness, testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, socks5Connect } from "../../tests/helpers/socks_bytes.ts";
import type { AuthorizeQuestion } from "./authorize.ts";
import { DEFAULT_PROXY_FROM, isTrustedProxy, PROXY_LOCAL_OUTCOME, proxyHeaderAdmitter } from "./proxy_header.ts";

before(installLogCapture);
after(removeLogCapture);

const LOOPBACK = DEFAULT_PROXY_FROM.split(",").map((text) => parseCidr(text)!);
/** The load balancer: a trusted loopback peer. */
const BALANCER: NetAddress = { host: "127.0.0.1", port: 50000, family: 4 };
/** A peer outside --proxy-protocol-from. */
const STRANGER: NetAddress = { host: "192.0.2.66", port: 40000, family: 4 };
const TARGET = { host: "203.0.113.10", port: 80 };

function v1(source: string, port = 5555, protocol = "TCP4", destination = "127.0.0.1"): Uint8Array {
  return new TextEncoder().encode(`PROXY ${protocol} ${source} ${destination} ${port} 1080\r\n`);
}

function v2(source: string, port = 5555, family: 4 | 6 = 4, transport: "stream" | "datagram" = "stream"): Uint8Array {
  const header: ProxyHeader = {
    version: 2,
    command: "proxy",
    family,
    transport,
    source: { host: source, port },
    destination: { host: family === 4 ? "127.0.0.1" : "::1", port: 1080 },
    tlvs: [{ type: 0x04, value: new Uint8Array(3) }],
  };
  return encodeProxyHeader(header, { crc32c: true });
}

const SOCKS = [...SOCKS5_GREETING, ...socks5Connect(TARGET.host, TARGET.port)];

/** A server with the PROXY admitter (loopback trusted), a target and a router that dials it. */
async function withProxyServer(
  options: Partial<HarnessOptions> & { readonly trusted?: string },
  body: (
    h: ServerHarness,
    extra: { questions: AuthorizeQuestion[]; router: ReturnType<typeof fixedRouter> },
  ) => Promise<void>,
): Promise<void> {
  const runtime = createMemoryRuntime();
  await startTarget(runtime, TARGET.host, TARGET.port, { echo: true });
  const router = fixedRouter(runtimeDialer(runtime));
  const questions: AuthorizeQuestion[] = [];
  const policy = options.policy ?? testPolicy(router, {
    authorizer: {
      authorize(question) {
        questions.push(question);
        return { allowed: true };
      },
    },
  });
  const trusted = options.trusted === undefined ? LOOPBACK : options.trusted.split(",").map((t) => parseCidr(t)!);
  await withServer(
    { ...options, runtime, policy, admitters: [proxyHeaderAdmitter(trusted), ...(options.admitters ?? [])] },
    (h) => body(h, { questions, router }),
  );
}

/** Sends `bytes` then a SOCKS5 CONNECT from `from`; asserts it is relayed (echo) and closes. */
async function connectThrough(h: ServerHarness, header: Uint8Array, from: NetAddress = BALANCER): Promise<void> {
  const client = h.client(from);
  client.send([...header, ...SOCKS, ...new TextEncoder().encode("ping")]);
  const reply = await client.read(2 + 10 + 4);
  assert.equal(reply[1], 0, "method 00");
  assert.equal(reply[3], 0, "REP 00");
  assert.equal(new TextDecoder().decode(reply.subarray(12)), "ping");
  client.close();
}

/** Sends `bytes` (a header, or not) from `from` and expects the server to end the connection without a byte. */
async function expectClosed(h: ServerHarness, bytes: Iterable<number>, from: NetAddress = BALANCER): Promise<void> {
  const client = h.client(from);
  client.send([...bytes]);
  assert.equal((await client.readToEnd(1000)).length, 0);
  client.close();
}

function warnings(h: ServerHarness): string[] {
  return h.log.entries().filter((entry) => entry.level === "warning").map((entry) => entry.text);
}

describe("proxyHeaderAdmitter", () => {
  test("a trusted v1 header: the router, the authorizer, the log line and the record see its client", async () => {
    await withProxyServer({}, async (h, { questions, router }) => {
      await connectThrough(h, v1("198.51.100.7"));
      const [record] = await h.waitForRecords(1);
      const client = { host: "198.51.100.7", port: 5555, family: 4 };
      assert.deepEqual(record?.client, client);
      assert.equal(record?.outcome, "done");
      assert.deepEqual(router.requests[0]?.client, client);
      assert.deepEqual(questions[0]?.client.address, client);
      // The address the client reached us on stays the real socket's (-g, BIND and UDP bind to it).
      assert.deepEqual(questions[0]?.client.local, { host: "127.0.0.1", port: 1080, family: 4 });
      assert.equal(h.log.lines()[0], "198.51.100.7:5555 5-CON 203.0.113.10:80(ipv4) - direct");
      assert.ok(h.log.lines().every((line) => line.startsWith("198.51.100.7:5555 ")), h.log.lines().join("\n"));
    });
  });

  test("a trusted v2 header with TLVs and a CRC32C, sent one byte at a time", async () => {
    await withProxyServer({}, async (h) => {
      const client = h.client(BALANCER);
      for (const byte of [...v2("2001:db8::7", 6000, 6), ...SOCKS]) {
        client.send([byte]);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      assert.equal((await client.read(12))[3], 0);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.client, { host: "2001:db8::7", port: 6000, family: 6 });
    });
  });

  test("an IPv4-mapped IPv6 source counts as its IPv4 address", async () => {
    await withProxyServer({}, async (h) => {
      await connectThrough(h, v1("::ffff:198.51.100.7", 7000, "TCP6", "::1"));
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.client, { host: "198.51.100.7", port: 7000, family: 4 });
    });
  });

  test("tcp_wrappers (a policy admitter) judges the header's address, not the balancer's", async () => {
    const files = { stamp: () => "", read: (path: string) => (path === "/d" ? "srelay: 198.51.100.7\n" : "") };
    const access = hostsAccessAdmitter(openHostsAccess({ allowFile: "/a", denyFile: "/d", files }));
    const runtime = createMemoryRuntime();
    await startTarget(runtime, TARGET.host, TARGET.port, { echo: true });
    const policy = testPolicy(fixedRouter(runtimeDialer(runtime)), { admitters: [access] });
    await withServer({ runtime, policy, admitters: [proxyHeaderAdmitter(LOOPBACK)] }, async (h) => {
      await expectClosed(h, [...v2("198.51.100.7"), ...SOCKS]);
      await connectThrough(h, v2("198.51.100.8"));
      const records = await h.waitForRecords(2);
      assert.deepEqual(records.map((r) => [r.client.host, r.outcome]), [
        ["198.51.100.7", "denied_by_tcp_wrappers"],
        ["198.51.100.8", "done"],
      ]);
      assert.deepEqual(warnings(h), ["198.51.100.7:5555 denied: /d:1"]);
    });
  });

  test("a peer outside --proxy-protocol-from is closed before a byte is read; its header is never believed", async () => {
    let policyAdmitterRan = false;
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("not dialled")) }), {
      admitters: [{
        admit(client) {
          policyAdmitterRan = true;
          return { admitted: true, client };
        },
      }],
    });
    await withProxyServer({ policy }, async (h) => {
      await expectClosed(h, [...v1("127.0.0.1"), ...SOCKS], STRANGER);
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.client, STRANGER);
      assert.equal(record?.outcome, "denied");
      assert.deepEqual(warnings(h), [
        "192.0.2.66:40000 denied: PROXY protocol: 192.0.2.66 is not in --proxy-protocol-from",
      ]);
      assert.equal(policyAdmitterRan, false);
    });
  });

  test("--proxy-protocol-from subnets are honoured", async () => {
    await withProxyServer({ trusted: "192.0.2.64/27,::1" }, async (h) => {
      await connectThrough(h, v1("198.51.100.7"), STRANGER);
      await h.waitForRecords(1);
      await expectClosed(h, v1("198.51.100.7"), BALANCER);
      const records = await h.waitForRecords(2);
      assert.deepEqual(records.map((r) => [r.client.host, r.outcome]), [["198.51.100.7", "done"], [
        "127.0.0.1",
        "denied",
      ]]);
    });
  });

  const BAD: Array<[string, Uint8Array | number[], RegExp]> = [
    ["a SOCKS greeting without a header", SOCKS, /Cannot decode PROXY header: first byte 0x05 starts neither/],
    ["an HTTP request", [...new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n")], /first byte 0x47/],
    ["a v1 header with a bad port", v1("198.51.100.7", 65536), /port "65536"/],
    ["a v1 header with a name", new TextEncoder().encode("PROXY TCP4 evil.example 127.0.0.1 1 2\r\n"), /IPv4/],
    ["an oversized v1 header", new TextEncoder().encode(`PROXY TCP4 ${"1".repeat(120)}`), /no CRLF in 107 bytes/],
    ["a v2 header with a bad CRC32C", v2("198.51.100.7").map((b, i) => (i === 16 ? b ^ 1 : b)), /CRC32C/],
    ["an oversized v2 header", [...v2("198.51.100.7").subarray(0, 14), 0xff, 0xff], /longer than 4096/],
  ];
  for (const [name, bytes, reason] of BAD) {
    test(`${name}: closed with a warning, and the listener keeps serving`, async () => {
      await withProxyServer({}, async (h) => {
        await expectClosed(h, bytes);
        await connectThrough(h, v1("198.51.100.7"));
        const records = await h.waitForRecords(2);
        assert.deepEqual(records.map((r) => [r.client.host, r.outcome]), [
          ["127.0.0.1", "handshake_failed"],
          ["198.51.100.7", "done"],
        ]);
        const [warning] = warnings(h);
        assert.match(warning ?? "", /^127\.0\.0\.1:50000 handshake failed: /);
        assert.match(warning ?? "", reason);
      });
    });
  }

  test("a truncated header (FIN in the middle) is closed with a warning", async () => {
    await withProxyServer({}, async (h) => {
      const client = h.client(BALANCER);
      client.send(v2("198.51.100.7").subarray(0, 20));
      client.end();
      await client.readToEnd(1000);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "handshake_failed");
      assert.deepEqual(warnings(h), [
        "127.0.0.1:50000 handshake failed: Cannot decode PROXY header: connection ended after 20 of 41 bytes",
      ]);
    });
  });

  test("a header that arrives too slowly is closed at the handshake timeout", async () => {
    await withProxyServer({ settings: { handshakeTimeoutMs: 100 } }, async (h) => {
      const client = h.client(BALANCER);
      client.send(new TextEncoder().encode("PROXY TCP4 198.51"));
      await client.readToEnd(2000);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "handshake_failed");
      assert.deepEqual(warnings(h), [
        "127.0.0.1:50000 handshake failed: Cannot read PROXY header: Handshake not completed within 0.1 s",
      ]);
    });
  });

  test("a connection closed before any byte is logged at info level, like one without PROXY", async () => {
    await withProxyServer({}, async (h) => {
      const client = h.client(BALANCER);
      client.end();
      await client.readToEnd(1000);
      client.close();
      await h.waitForRecords(1);
      assert.deepEqual(h.log.entries().map((e) => [e.level, e.text]), [
        ["info", "127.0.0.1:50000 handshake failed: Cannot read PROXY header: Connection closed by peer"],
      ]);
    });
  });

  test("a peer whose address the runtime could not tell (reset before accept) is closed at info level", async () => {
    await withProxyServer({}, async (h) => {
      const client = h.client({ host: "", port: 0, family: 4 });
      client.send(v1("198.51.100.7"));
      await client.readToEnd(1000);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "handshake_failed");
      assert.deepEqual(h.log.entries().map((e) => [e.level, e.text]), [
        ["info", ":0 handshake failed: Cannot read PROXY header: the peer was gone before its address was known"],
      ]);
    });
  });

  test("a v2 LOCAL header (a health check) is closed quietly: debug only, outcome proxy_local", async () => {
    await withProxyServer({}, async (h) => {
      await expectClosed(h, encodeProxyHeader({ version: 2, command: "local" }));
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, PROXY_LOCAL_OUTCOME);
      assert.deepEqual(record?.client, BALANCER);
      assert.deepEqual(h.log.entries().map((e) => [e.level, e.text]), [
        ["debug", "127.0.0.1:50000 PROXY: v2 LOCAL header (a health check): closed"],
      ]);
    });
  });

  const NO_ADDRESS: Array<[string, Uint8Array, string]> = [
    ["v1 UNKNOWN", new TextEncoder().encode("PROXY UNKNOWN\r\n"), "no IP client address (v1 UNKNOWN)"],
    ["v2 UNSPEC", encodeProxyHeader({ version: 2, command: "unknown", tlvs: [] }), "no IP client address (v2 UNSPEC"],
    ["v2 UDP", v2("198.51.100.7", 5555, 4, "datagram"), "for a UDP connection"],
  ];
  for (const [name, bytes, reason] of NO_ADDRESS) {
    test(`a ${name} header is denied with a warning: there is no TCP client address to check`, async () => {
      await withProxyServer({}, async (h) => {
        await expectClosed(h, [...bytes, ...SOCKS]);
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "denied");
        const [warning] = warnings(h);
        assert.ok(warning?.startsWith("127.0.0.1:50000 denied: PROXY header ") && warning.includes(reason), warning);
      });
    });
  }
});

describe("isTrustedProxy", () => {
  test("matches addresses and subnets of either family; IPv4-mapped peers count as IPv4", () => {
    assert.equal(isTrustedProxy(LOOPBACK, "127.0.0.1"), true);
    assert.equal(isTrustedProxy(LOOPBACK, "127.255.0.9"), true);
    assert.equal(isTrustedProxy(LOOPBACK, "::1"), true);
    assert.equal(isTrustedProxy(LOOPBACK, "::ffff:127.0.0.1"), true);
    assert.equal(isTrustedProxy(LOOPBACK, "128.0.0.1"), false);
    assert.equal(isTrustedProxy(LOOPBACK, "::2"), false);
    assert.equal(isTrustedProxy(LOOPBACK, "not-an-address"), false);
    assert.equal(isTrustedProxy(LOOPBACK, ""), false);
    assert.equal(isTrustedProxy([parseCidr("[fd00::]/8")!], "fd12::1"), true);
  });
});
