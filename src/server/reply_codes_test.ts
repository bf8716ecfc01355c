// The error-to-reply map at work on a resolver that never answers: every
// command that needs a name gives REP 04 (SOCKS4: CD 5B) once the resolve
// timeout, or the connect timeout, runs out, with one line saying so.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { encodeSocks5UdpDatagram } from "../protocol/socks5_udp.ts";
import { createResolver, type Resolver } from "../runtime/resolver.ts";
import { NetError } from "../runtime/types.ts";
import { createDirectDialer } from "../upstream/direct_dialer.ts";
import { fixedRouter } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { eventually, type ServerHarness, testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import {
  socks4aConnect,
  socks4Reply,
  SOCKS5_GREETING,
  SOCKS5_NO_AUTH_SELECTED,
  socks5ConnectDomain,
  socks5Reply,
} from "../../tests/helpers/socks_bytes.ts";
import type { Authorizer } from "./authorize.ts";
import { failureReasonFor } from "./reply_codes.ts";

before(installLogCapture);
after(removeLogCapture);

/** A resolver whose system lookup never answers: only its timeout ends a lookup. */
function silentResolver(timeoutMs: number): Resolver {
  return createResolver({ lookup: () => new Promise(() => {}), timeoutMs });
}

/** A server whose CONNECTs go through the real direct dialer and whose commands use `resolver`. */
function withSlowDns(
  options: { resolveTimeoutMs: number; connectTimeoutMs: number; authorizer?: Authorizer },
  body: (h: ServerHarness, runtime: MemoryRuntime) => Promise<void>,
): Promise<void> {
  const runtime = createMemoryRuntime();
  const resolver = silentResolver(options.resolveTimeoutMs);
  const router = fixedRouter(
    createDirectDialer({ runtime, resolver, connectTimeoutMs: options.connectTimeoutMs }),
  );
  const policy = testPolicy(router, options.authorizer === undefined ? {} : { authorizer: options.authorizer });
  return withServer({ runtime, policy, resolver }, (h) => body(h, runtime));
}

/** The warning lines, without their closing `time=`. */
function warnings(h: ServerHarness): string[] {
  return h.log.entries().filter((line) => line.level === "warning").map((line) => line.text.replace(/ time=.*$/, ""));
}

describe("failureReasonFor", () => {
  test("a name that does not resolve, in time or at all, is host_unreachable (REP 04)", () => {
    assert.equal(
      failureReasonFor(new NetError("not_found", "Cannot resolve slow.example: no answer within 50 ms")),
      "host_unreachable",
    );
    assert.equal(failureReasonFor(new NetError("timeout", "Cannot connect to 192.0.2.1:80")), "ttl_expired");
  });
});

describe("a resolver that never answers", () => {
  test("CONNECT: REP 04 once the resolve timeout runs out, one line naming the name and the wait", async () => {
    await withSlowDns({ resolveTimeoutMs: 50, connectTimeoutMs: 10_000 }, async (h) => {
      const client = h.client();
      client.send([...SOCKS5_GREETING, ...socks5ConnectDomain("slow.example", 80)]);
      assert.deepEqual([...await client.readToEnd()], [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(4)]);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.reason, "host_unreachable");
      assert.deepEqual(warnings(h), [
        `127.0.0.1:${client.connection.local.port} 5-CON slow.example:80 direct failed: host_unreachable: ` +
        "Cannot resolve slow.example: no answer within 50 ms",
      ]);
    });
  });

  test("CONNECT: the connect timeout, when it runs out first, says the same (REP 04, not 06)", async () => {
    await withSlowDns({ resolveTimeoutMs: 1000, connectTimeoutMs: 50 }, async (h) => {
      const client = h.client();
      client.send([...SOCKS5_GREETING, ...socks5ConnectDomain("slow.example", 80)]);
      assert.deepEqual([...await client.readToEnd()], [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(4)]);
      client.close();
      await h.waitForRecords(1);
      assert.deepEqual(warnings(h), [
        `127.0.0.1:${client.connection.local.port} 5-CON slow.example:80 direct failed: host_unreachable: ` +
        "Cannot resolve slow.example: no answer within 50 ms",
      ]);
    });
  });

  test("SOCKS4a CONNECT: CD 5B", async () => {
    await withSlowDns({ resolveTimeoutMs: 50, connectTimeoutMs: 10_000 }, async (h) => {
      const client = h.client();
      client.send(socks4aConnect("slow.example", 80));
      assert.deepEqual([...await client.readToEnd()], socks4Reply(0x5b));
      client.close();
      await h.waitForRecords(1);
      assert.match(warnings(h)[0] ?? "", /4a-CON slow\.example:80 direct failed: host_unreachable: Cannot resolve/);
    });
  });

  test("BIND for a named peer: REP 04 as the first reply, no listener left", async () => {
    await withSlowDns({ resolveTimeoutMs: 50, connectTimeoutMs: 10_000 }, async (h) => {
      const client = h.client();
      const name = [...new TextEncoder().encode("peer.example")];
      client.send([...SOCKS5_GREETING, 5, 2, 0, 3, name.length, ...name, 0, 0]);
      assert.deepEqual([...await client.readToEnd()], [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(4)]);
      client.close();
      await h.waitForRecords(1);
      assert.deepEqual(warnings(h), [
        `127.0.0.1:${client.connection.local.port} 5-BND peer.example:0 direct failed: host_unreachable: ` +
        "Cannot resolve peer.example: no answer within 50 ms",
      ]);
      await h.waitForIdle();
    });
  });

  test("destination rules that must resolve the name: REP 04 and a line saying the rules could not be checked", async () => {
    const resolver = silentResolver(50);
    const authorizer: Authorizer = {
      authorize: (question) => resolver.resolve(question.request.target.host).then(() => ({ allowed: true })),
    };
    await withSlowDns({ resolveTimeoutMs: 50, connectTimeoutMs: 10_000, authorizer }, async (h) => {
      const client = h.client();
      client.send([...SOCKS5_GREETING, ...socks5ConnectDomain("slow.example", 443)]);
      assert.deepEqual([...await client.readToEnd()], [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(4)]);
      client.close();
      await h.waitForRecords(1);
      assert.deepEqual(warnings(h), [
        `127.0.0.1:${client.connection.local.port} 5-CON: slow.example:443: cannot check the rules: host_unreachable: ` +
        "Cannot resolve slow.example: no answer within 50 ms",
      ]);
    });
  });

  test("UDP ASSOCIATE: a datagram for the name is dropped (unresolved) with one line; the association lives on", async () => {
    await withSlowDns({ resolveTimeoutMs: 50, connectTimeoutMs: 10_000 }, async (h, runtime) => {
      const udp = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
      const control = h.client();
      control.send([...SOCKS5_GREETING, 5, 3, 0, 1, 0, 0, 0, 0, udp.local.port >> 8, udp.local.port & 0xff]);
      assert.deepEqual([...await control.read(2)], SOCKS5_NO_AUTH_SELECTED);
      const reply = await control.read(10);
      assert.equal(reply[1], 0);
      const relayPort = (reply[8]! << 8) | reply[9]!;
      const datagram = encodeSocks5UdpDatagram(
        { kind: "domain", host: "slow.example", port: 53 },
        new TextEncoder().encode("query"),
      );
      udp.send(datagram, "127.0.0.1", relayPort);
      await eventually(() => warnings(h).length > 0, "the drop line");
      assert.match(
        warnings(h)[0] ?? "",
        /5-UDP \S+ per-datagram: dropped a datagram \(unresolved\): slow\.example:53: Cannot resolve slow\.example: no answer within 50 ms/,
      );
      assert.equal(control.ended, false, "the association goes on");
      control.close();
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.drops, { unresolved: 1 });
      udp.close();
    });
  });
});
