// The session pipeline through SocksServer on the memory runtime: what a
// client that is refused or that speaks nonsense receives, byte for byte,
// and the log line and record it leaves.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import type { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { type ServerHarness, sleep, withServer } from "../../tests/helpers/server_script.ts";
import {
  socks4Reply,
  socks4Request,
  SOCKS5_GREETING,
  SOCKS5_NO_AUTH_SELECTED,
  socks5Connect,
  socks5Reply,
  socks5Request,
} from "../../tests/helpers/socks_bytes.ts";

const CLIENT = { host: "192.0.2.7", port: 40000, family: 4 as const };

before(installLogCapture);
after(removeLogCapture);

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

/** A router that must not be asked: these sessions end before routing. */
function unusedRouter() {
  return fixedRouter({ dial: () => Promise.reject(new Error("not dialled")) });
}

/**
 * Sends `request`, expects exactly `reply` and then FIN, closes the client,
 * and waits for the session's record; returns the harness's log entries.
 */
async function expectRefusal(h: ServerHarness, request: readonly number[], reply: readonly number[]) {
  const client = h.client(CLIENT);
  client.send(request);
  const got = await client.readToEnd();
  assert.deepEqual(list(got), reply);
  client.close();
  await h.waitForRecords(1);
  await h.waitForIdle();
  return h.log.entries();
}

describe("refusals and protocol errors", () => {
  test("an unknown SOCKS5 command gets the full 10-byte REP 07 reply", async () => {
    const router = unusedRouter();
    await withServer({ router }, async (h) => {
      const lines = await expectRefusal(h, [...SOCKS5_GREETING, ...socks5Request(9, "203.0.113.10", 80)], [
        ...SOCKS5_NO_AUTH_SELECTED,
        ...socks5Reply(7),
      ]);
      assert.deepEqual(lines.map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 handshake failed: Cannot decode SOCKS5 request: command 0x09 is unsupported"],
      ]);
      assert.equal(h.records[0]?.outcome, "handshake_failed");
      assert.equal(router.requests.length, 0);
    });
  });

  // BIND and UDP ASSOCIATE are served: bind_test.ts, udp_associate_test.ts.

  test("an unknown SOCKS4 command → VN 0, CD 5B", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const lines = await expectRefusal(h, socks4Request(3, "203.0.113.10", 21), socks4Reply(0x5b));
      assert.deepEqual(lines.map((line) => line.text), [
        "192.0.2.7:40000 handshake failed: Cannot decode SOCKS4 request: command 0x03 is unsupported",
      ]);
    });
  });

  test("an unknown ATYP → REP 08", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const lines = await expectRefusal(h, [...SOCKS5_GREETING, 5, 1, 0, 7, 1, 2, 3, 4, 0, 80], [
        ...SOCKS5_NO_AUTH_SELECTED,
        ...socks5Reply(8),
      ]);
      assert.deepEqual(lines.map((line) => line.text), [
        "192.0.2.7:40000 handshake failed: Cannot decode SOCKS5 address: address type 0x07 is unsupported",
      ]);
    });
  });

  test("no acceptable method → 05 FF and nothing else", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const lines = await expectRefusal(h, [5, 2, 1, 2], [5, 0xff]);
      assert.deepEqual(lines.map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 5: no acceptable authentication method (offered 0x01,0x02)"],
      ]);
      assert.equal(h.records[0]?.outcome, "no_acceptable_method");
    });
  });

  test("a greeting with no methods → 05 FF", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const lines = await expectRefusal(h, [5, 0], [5, 0xff]);
      assert.match(lines[0]?.text ?? "", /handshake failed: Cannot decode SOCKS5 greeting: no methods offered$/);
    });
  });

  test("a non-SOCKS first byte: closed without a byte of answer", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const lines = await expectRefusal(h, [...new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")], []);
      assert.deepEqual(lines.map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 handshake failed: Cannot serve client: first byte 0x47 is not SOCKS4 or SOCKS5"],
      ]);
      assert.equal(h.records[0]?.outcome, "handshake_failed");
    });
  });

  test("a client that ends in the middle of its greeting: closed, logged as a warning", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const client = h.client(CLIENT);
      client.send([5]);
      client.end();
      assert.deepEqual(list(await client.readToEnd()), []);
      await h.waitForRecords(1);
      assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 handshake failed: Cannot decode message: connection ended after 1 of 2 bytes"],
      ]);
    });
  });

  test("a client that closes before any byte is logged at info level only", async () => {
    await withServer({ router: unusedRouter() }, async (h) => {
      const client = h.client(CLIENT);
      client.close();
      await h.waitForRecords(1);
      assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
        ["info", "192.0.2.7:40000 handshake failed: Connection closed by peer"],
      ]);
    });
  });

  test("a client that leaves while its target is being dialled: no reply, the dialled connection closed", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const inner = runtimeDialer(runtime);
    let client: ScriptPeer | undefined;
    const dialer = {
      async dial(...args: Parameters<typeof inner.dial>) {
        client?.close();
        await sleep(5);
        return inner.dial(...args);
      },
    };
    await withServer({ runtime, router: fixedRouter(dialer) }, async (h) => {
      client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
      await h.waitForRecords(1);
      assert.equal(h.records[0]?.outcome, "client_gone");
      await (await target.peer()).waitForClose(500);
      assert.equal(runtime.outbound[0]?.closed, true);
      assert.match(h.log.lines()[1] ?? "", /5-CON 203\.0\.113\.10:80 direct: client left before the reply$/);
    });
  });
});

describe("the handshake deadline stays out of the relay", () => {
  test("a relaying session outlives the handshake timeout (30 ms): data at 100 ms still flows", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    await withServer(
      { runtime, router: fixedRouter(runtimeDialer(runtime)), settings: { handshakeTimeoutMs: 30 } },
      async (h) => {
        const client = h.client(CLIENT);
        client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
        assert.equal((await client.read(12))[1], 0);
        const peer = await target.peer();
        await sleep(100);
        client.send("late");
        assert.equal(new TextDecoder().decode(await peer.read(4)), "late");
        peer.send("reply");
        assert.equal(new TextDecoder().decode(await client.read(5)), "reply");
        assert.equal(h.server.activeSessions, 1);
        assert.equal(h.records.length, 0);
        client.end();
        await peer.readToEnd();
        peer.end();
        await client.readToEnd();
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "done");
        assert.equal(record?.bytesUp, 4);
        assert.ok(!h.log.lines().some((line) => line.includes("handshake")), h.log.lines().join("\n"));
      },
    );
  });
});

describe("an error no stage expected", () => {
  test("is logged at error level with its class and where it was thrown, not as a bad handshake", async () => {
    const broken = { admit: () => Promise.reject(new TypeError("boom")) };
    await withServer({ admitters: [broken] }, async (h) => {
      const client = h.client();
      client.send(SOCKS5_GREETING);
      await client.readToEnd(500);
      const record = (await h.waitForRecords(1))[0];
      assert.equal(record?.outcome, "internal_error");
      const entry = h.log.entries().find((line) => line.properties.outcome === "internal_error");
      assert.equal(entry?.level, "error");
      assert.match(entry?.text ?? "", /internal error: TypeError: boom \(at /);
    });
  });
});
