// --max-per-client in a real SocksServer on the memory runtime: the N+1th
// concurrent session of one address is closed before any SOCKS byte, other
// addresses are not, the slot comes back however the session ends, the log
// is rate-limited per address, and behind a PROXY header the real client is
// the one counted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseCliOptions, UsageError } from "../cli/options.ts";
import { parseCidr } from "../net/address.ts";
import type { NetAddress } from "../runtime/types.ts";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import type { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { eventually, type ServerHarness, testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, SOCKS5_NO_AUTH_SELECTED, socks5Connect } from "../../tests/helpers/socks_bytes.ts";
import type { Admitter } from "./admit.ts";
import { clientKey, clientLimitAdmitter, OVER_CLIENT_LIMIT_OUTCOME } from "./client_limit.ts";
import { proxyHeaderAdmitter } from "./proxy_header.ts";

before(installLogCapture);
after(removeLogCapture);

const A = (port: number): NetAddress => ({ host: "192.0.2.7", port, family: 4 });
const B = (port: number): NetAddress => ({ host: "192.0.2.8", port, family: 4 });

/** A client whose session is open and waiting in its handshake (it got the method reply). */
async function holding(h: ServerHarness, from: NetAddress): Promise<ScriptPeer> {
  const client = h.client(from);
  client.send(SOCKS5_GREETING);
  assert.deepEqual([...await client.read(2)], SOCKS5_NO_AUTH_SELECTED, `${from.host}:${from.port} is served`);
  return client;
}

/** Asserts `from` is closed at once, before any SOCKS byte, as over its limit. */
async function refused(h: ServerHarness, from: NetAddress): Promise<void> {
  const before = h.records.length;
  const client = h.client(from);
  client.send(SOCKS5_GREETING);
  await client.waitForClose(500);
  assert.equal(client.receivedLength, 0, `${from.host}:${from.port} got no byte`);
  const records = await h.waitForRecords(before + 1);
  assert.equal(records.at(-1)?.outcome, OVER_CLIENT_LIMIT_OUTCOME);
}

describe("--max-per-client", () => {
  test("the N+1th concurrent session of one address is closed before any SOCKS byte; another address is not", async () => {
    await withServer({ admitters: [clientLimitAdmitter(2)] }, async (h) => {
      await holding(h, A(1001));
      await holding(h, A(1002));
      await refused(h, A(1003));
      await holding(h, B(2001));
      await holding(h, B(2002));
      await refused(h, B(2003));
      assert.equal(h.server.activeSessions, 4);
      const denied = h.log.entries().filter((line) => line.properties.outcome === OVER_CLIENT_LIMIT_OUTCOME);
      assert.deepEqual(denied.map((line) => [line.level, line.text]), [
        [
          "warning",
          "192.0.2.7:1003 denied: 2 sessions from 192.0.2.7 already running (--max-per-client 2); 1 refused since the last such line",
        ],
        [
          "warning",
          "192.0.2.8:2003 denied: 2 sessions from 192.0.2.8 already running (--max-per-client 2); 1 refused since the last such line",
        ],
      ]);
      assert.equal(h.records.length, 2, "only the refused clients have ended");
    });
  });

  test("the slot comes back when a CONNECT session is done", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    await withServer(
      { runtime, router: fixedRouter(runtimeDialer(runtime)), admitters: [clientLimitAdmitter(1)] },
      async (h) => {
        const client = h.client(A(1001));
        client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
        assert.equal((await client.read(12))[1], 0);
        await refused(h, A(1002));
        client.close();
        await (await target.peer()).waitForClose();
        await h.waitForIdle();
        assert.equal(h.records.at(-1)?.outcome, "done");
        await holding(h, A(1003));
      },
    );
  });

  test("the slot comes back after a failed handshake and after a refused request", async () => {
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("not dialled")) }), {
      authorizer: { authorize: () => ({ allowed: false, reason: "rules:1" }) },
    });
    await withServer({ policy, admitters: [clientLimitAdmitter(1)] }, async (h) => {
      const bad = h.client(A(1001));
      bad.send([0x47, 0x45, 0x54]);
      await bad.readToEnd(500);
      bad.close();
      assert.equal((await h.waitForRecords(1))[0]?.outcome, "handshake_failed");
      const denied = h.client(A(1002));
      denied.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
      await denied.readToEnd(500);
      denied.close();
      assert.equal((await h.waitForRecords(2))[1]?.outcome, "not_allowed");
      await h.waitForIdle();
      await holding(h, A(1003));
      await refused(h, A(1004));
    });
  });

  test("the slot comes back when a later admitter refuses the client or fails", async () => {
    let mode: "refuse" | "throw" | "admit" = "refuse";
    const later: Admitter = {
      admit: (client) =>
        Promise.resolve().then(() => {
          if (mode === "throw") throw new Error("lookup failed");
          return mode === "refuse"
            ? { admitted: false as const, outcome: "denied_by_tcp_wrappers", reason: "hosts.deny:1" }
            : { admitted: true as const, client };
        }),
    };
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("no")) }), { admitters: [later] });
    await withServer({ policy, admitters: [clientLimitAdmitter(1)] }, async (h) => {
      await h.client(A(1001)).waitForClose(500);
      assert.equal((await h.waitForRecords(1))[0]?.outcome, "denied_by_tcp_wrappers");
      mode = "throw";
      const failed = h.client(A(1002));
      await failed.readToEnd(500);
      failed.close();
      assert.equal(
        (await h.waitForRecords(2))[1]?.outcome,
        "internal_error",
        "an admitter that throws is a bug, logged as one",
      );
      mode = "admit";
      await holding(h, A(1003));
      await refused(h, A(1004));
    });
  });

  test("one warning a second per address, with the count; repeats in between at debug level", async () => {
    let clock = 1_000_000;
    await withServer({ admitters: [clientLimitAdmitter(1, () => clock)] }, async (h) => {
      await holding(h, A(1000));
      await holding(h, B(2000));
      for (let port = 1001; port <= 1003; port++) await refused(h, A(port));
      await refused(h, B(2001));
      clock += 999;
      await refused(h, A(1004));
      clock += 1;
      await refused(h, A(1005));
      const lines = h.log.entries().filter((line) => line.properties.outcome === OVER_CLIENT_LIMIT_OUTCOME);
      assert.deepEqual(lines.map((line) => [line.level, line.text.replace(/ already running.*?;/, ";")]), [
        ["warning", "192.0.2.7:1001 denied: 1 sessions from 192.0.2.7; 1 refused since the last such line"],
        ["debug", "192.0.2.7:1002 denied: 1 sessions from 192.0.2.7 already running (--max-per-client 1)"],
        ["debug", "192.0.2.7:1003 denied: 1 sessions from 192.0.2.7 already running (--max-per-client 1)"],
        ["warning", "192.0.2.8:2001 denied: 1 sessions from 192.0.2.8; 1 refused since the last such line"],
        ["debug", "192.0.2.7:1004 denied: 1 sessions from 192.0.2.7 already running (--max-per-client 1)"],
        ["warning", "192.0.2.7:1005 denied: 1 sessions from 192.0.2.7; 4 refused since the last such line"],
      ]);
    });
  });

  test("behind a PROXY header the real client is counted, not the load balancer", async () => {
    const balancer = (port: number): NetAddress => ({ host: "127.0.0.1", port, family: 4 });
    const header = (source: string, port: number) =>
      new TextEncoder().encode(`PROXY TCP4 ${source} 127.0.0.1 ${port} 1080\r\n`);
    const admitters = [proxyHeaderAdmitter([parseCidr("127.0.0.0/8")!]), clientLimitAdmitter(1)];
    await withServer({ admitters }, async (h) => {
      const viaBalancer = (source: string, port: number) => {
        const client = h.client(balancer(port));
        client.send([...header(source, port), ...SOCKS5_GREETING]);
        return client;
      };
      const first = viaBalancer("198.51.100.7", 5001);
      assert.deepEqual([...await first.read(2)], SOCKS5_NO_AUTH_SELECTED);
      const other = viaBalancer("198.51.100.8", 5002);
      assert.deepEqual(
        [...await other.read(2)],
        SOCKS5_NO_AUTH_SELECTED,
        "another real client behind the same balancer",
      );
      const again = viaBalancer("198.51.100.7", 5003);
      await again.waitForClose(500);
      assert.equal(again.receivedLength, 0);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, OVER_CLIENT_LIMIT_OUTCOME);
      assert.deepEqual(record?.client, { host: "198.51.100.7", port: 5003, family: 4 });
      assert.equal(
        h.log.lines().at(-1),
        "198.51.100.7:5003 denied: 1 sessions from 198.51.100.7 already running (--max-per-client 1); 1 refused since the last such line",
      );
      first.close();
      await eventually(() => h.server.activeSessions === 1, "the first session to end");
      const later = viaBalancer("198.51.100.7", 5004);
      assert.deepEqual([...await later.read(2)], SOCKS5_NO_AUTH_SELECTED, "the freed slot serves again");
    });
  });

  test("an IPv4-mapped address counts as its IPv4 address; IPv6 counts per address", async () => {
    assert.equal(clientKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(clientKey("2001:DB8:0::1"), "2001:db8::1");
    await withServer({ admitters: [clientLimitAdmitter(1)] }, async (h) => {
      await holding(h, A(1001));
      await refused(h, { host: "::ffff:192.0.2.7", port: 1002, family: 6 });
      await holding(h, { host: "2001:db8::1", port: 3001, family: 6 });
      await holding(h, { host: "2001:db8::2", port: 3002, family: 6 });
      await refused(h, { host: "2001:db8::1", port: 3003, family: 6 });
    });
  });
});

describe("--max-per-client on the command line", () => {
  test("is a whole number, 0 (no limit) by default; and a bad value is a usage error", () => {
    assert.equal(parseCliOptions([]).maxPerClient, 0);
    assert.equal(parseCliOptions(["--max-per-client", "3"]).maxPerClient, 3);
    for (const bad of ["1.5", "-1", "x"]) {
      assert.throws(() => parseCliOptions(["--max-per-client", bad]), UsageError, bad);
    }
  });
});
