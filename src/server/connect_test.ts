// CONNECT through SocksServer on the memory runtime: exact reply bytes,
// data both ways, the session record and the log lines a user sees.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FailureReason } from "../protocol/reply.ts";
import type { Target } from "../protocol/target.ts";
import { NetError, type NetErrorCode } from "../runtime/types.ts";
import { HopError } from "../upstream/hop_error.ts";
import type { Dialer, DialResult } from "../upstream/dialer.ts";
import { failingDialer, fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { createConnectionPair, type MemoryConnectionEnd } from "../../tests/helpers/memory_connection.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { bytesOf } from "../../tests/helpers/script_peer.ts";
import { type ServerHarness, sleep, withServer } from "../../tests/helpers/server_script.ts";
import {
  socks4aConnect,
  socks4Reply,
  socks4Request,
  SOCKS5_GREETING,
  SOCKS5_NO_AUTH_SELECTED,
  socks5Connect,
  socks5ConnectDomain,
  socks5Reply,
} from "../../tests/helpers/socks_bytes.ts";

const CLIENT = { host: "192.0.2.7", port: 40000, family: 4 as const };
const TARGET_HOST = "203.0.113.10";
const TIME = String.raw`time=\d+\.\d{3}s`;

before(installLogCapture);
after(removeLogCapture);

/** A runtime with an echo-less target at 203.0.113.10:80 and a dialer that reaches it (BND 10.0.0.5:port). */
async function network(options: { bound?: Target } = {}) {
  const runtime = createMemoryRuntime({ sourceHost4: "10.0.0.5" });
  const target = await startTarget(runtime, TARGET_HOST, 80);
  const dialer = runtimeDialer(runtime, {
    names: { "example.org": TARGET_HOST },
    ...(options.bound === undefined ? {} : { bound: options.bound }),
  });
  const router = fixedRouter(dialer);
  return { runtime, target, dialer, router };
}

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

/** Sends data both ways, then ends the session from the client side; returns when the client saw the end. */
async function exchange(client: ScriptPeer, peer: ScriptPeer, up: string, down: string): Promise<void> {
  client.send(up);
  assert.equal(new TextDecoder().decode(await peer.read(up.length)), up);
  peer.send(down);
  assert.equal(new TextDecoder().decode(await client.read(down.length)), down);
  client.end();
  assert.deepEqual(list(await peer.readToEnd()), []);
  peer.end();
  assert.deepEqual(list(await client.readToEnd()), []);
}

/** Reads one failure reply, checks the server then half-closes, and closes the client. */
async function expectFailure(client: ScriptPeer, reply: number[]): Promise<void> {
  assert.deepEqual(list(await client.read(reply.length)), reply);
  assert.deepEqual(list(await client.readToEnd()), [], "nothing may follow the failure reply");
  client.close();
}

describe("CONNECT success", () => {
  test("SOCKS5: 05 00, BND = the outbound local address, data both ways, one record with byte counts", async () => {
    const { runtime, target, dialer, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send(SOCKS5_GREETING);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      client.send(socks5Connect(TARGET_HOST, 80));
      const reply = await client.read(10);
      const outbound = runtime.outbound[0];
      assert.ok(outbound !== undefined);
      assert.deepEqual(outbound.local, { host: "10.0.0.5", port: outbound.local.port, family: 4 });
      assert.deepEqual(list(reply), socks5Reply(0, "10.0.0.5", outbound.local.port));
      await exchange(client, await target.peer(), "hello", "world!");
      const [record] = await h.waitForRecords(1);
      assert.ok((record?.handshakeSeconds ?? -1) >= 0 && (record?.connectSeconds ?? -1) >= 0, "times for --metrics");
      assert.deepEqual({ ...record, seconds: 0, handshakeSeconds: 0, connectSeconds: 0 }, {
        id: 1,
        client: CLIENT,
        version: "5",
        command: "connect",
        target: "203.0.113.10:80",
        user: "",
        route: "direct",
        bytesUp: 5,
        bytesDown: 6,
        seconds: 0,
        outcome: "done",
        authMethod: "none",
        handshakeSeconds: 0,
        connectSeconds: 0,
      });
      assert.deepEqual(router.requests, [
        { target: { kind: "ipv4", host: TARGET_HOST, port: 80 }, command: "connect", client: CLIENT },
      ]);
      assert.equal(dialer.calls[0]?.context.userId, "");
      assert.equal(dialer.calls[0]?.context.localHost, undefined);
      const lines = h.log.entries();
      assert.equal(lines.length, 2, lines.map((line) => line.text).join("\n"));
      assert.equal(lines[0]?.level, "info");
      assert.equal(lines[0]?.text, "192.0.2.7:40000 5-CON 203.0.113.10:80(ipv4) - direct");
      assert.equal(lines[1]?.level, "info");
      assert.match(
        lines[1]?.text ?? "",
        new RegExp(
          `^192\\.0\\.2\\.7:40000 5-CON 203\\.0\\.113\\.10:80 direct bound=10\\.0\\.0\\.5:${outbound.local.port} ` +
            `up=5 down=6 ${TIME} done$`,
        ),
      );
      assert.equal(lines[1]?.properties.outcome, "done");
      assert.equal(lines[1]?.properties.bytesUp, 5);
      assert.equal(h.server.activeSessions, 0);
    });
  });

  test("SOCKS5 with a domain target: routed as a name, logged as (fqdn)", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5ConnectDomain("example.org", 80)]);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "10.0.0.5", runtime.outbound[0]?.local.port));
      await exchange(client, await target.peer(), "a", "b");
      assert.deepEqual(router.requests[0]?.target, { kind: "domain", host: "example.org", port: 80 });
      await h.waitForRecords(1);
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 5-CON example.org:80(fqdn) - direct");
      assert.equal(h.records[0]?.target, "example.org:80");
    });
  });

  test("SOCKS5: an IPv6 BND is sent with ATYP 04", async () => {
    const bound = { kind: "ipv6" as const, host: "2001:db8::5", port: 0x1092 };
    const { runtime, router } = await network({ bound });
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await client.read(2);
      const address = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
      assert.deepEqual(list(await client.read(22)), [5, 0, 0, 4, ...address, 0x10, 0x92]);
      client.close();
      await h.waitForRecords(1);
      assert.match(h.log.lines()[1] ?? "", / bound=\[2001:db8::5\]:4242 up=0 down=0 /);
    });
  });

  test("SOCKS4: VN 0, CD 5A, BND port and address; USERID is the user and goes to the dialer", async () => {
    const { runtime, target, dialer, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(1, TARGET_HOST, 80, "bob"));
      const reply = await client.read(8);
      const port = runtime.outbound[0]?.local.port ?? -1;
      assert.deepEqual(list(reply), socks4Reply(0x5a, "10.0.0.5", port));
      await exchange(client, await target.peer(), "GET /", "HTTP/1.0 200 OK");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.version, "4");
      assert.equal(record?.user, "bob");
      assert.equal(record?.bytesUp, 5);
      assert.equal(record?.bytesDown, 15);
      assert.equal(record?.outcome, "done");
      assert.equal(dialer.calls[0]?.context.userId, "bob");
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 4-CON 203.0.113.10:80(ipv4) bob direct");
      assert.match(
        h.log.lines()[1] ?? "",
        new RegExp(`4-CON 203\\.0\\.113\\.10:80 direct bound=10\\.0\\.0\\.5:${port} up=5 down=15 ${TIME} done$`),
      );
    });
  });

  test("SOCKS4a: the name goes to the router; an IPv6 BND is sent as 0.0.0.0:0", async () => {
    const { runtime, target, router } = await network({ bound: { kind: "ipv6", host: "2001:db8::5", port: 4242 } });
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4aConnect("example.org", 80));
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a));
      await exchange(client, await target.peer(), "x", "yz");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.version, "4a");
      assert.equal(record?.target, "example.org:80");
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 4a-CON example.org:80(fqdn) - direct");
    });
  });

  test("-g dials from the address the client reached; -x from the configured one", async () => {
    for (
      const [settings, expected] of [
        [{ sameInterface: true }, "127.0.0.1"],
        [{ sourceAddress: "192.0.2.99" }, "192.0.2.99"],
      ] as const
    ) {
      const { runtime, target, dialer, router } = await network();
      await withServer({ runtime, router, settings }, async (h) => {
        const client = h.client(CLIENT);
        client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
        await client.read(12);
        assert.equal(dialer.calls[0]?.context.localHost, expected);
        assert.equal(runtime.outbound[0]?.local.host, expected);
        await exchange(client, await target.peer(), "1", "2");
      });
    }
  });
});

/** A SOCKS5 CONNECT against a dialer failing with `error`: returns the harness after the record arrived. */
async function failedConnect(
  error: unknown,
  request: number[],
  reply: number[],
  check: (h: ServerHarness) => void,
): Promise<void> {
  const router = fixedRouter(failingDialer(error));
  await withServer({ router }, async (h) => {
    const client = h.client(CLIENT);
    client.send(request);
    if (request[0] === 5) assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
    await expectFailure(client, reply);
    await h.waitForRecords(1);
    check(h);
  });
}

describe("CONNECT failures: reply codes", () => {
  const NET_ERRORS: ReadonlyArray<[NetErrorCode, FailureReason, number]> = [
    ["refused", "connection_refused", 0x05],
    ["host_unreachable", "host_unreachable", 0x04],
    ["not_found", "host_unreachable", 0x04],
    ["net_unreachable", "network_unreachable", 0x03],
    ["address_not_available", "network_unreachable", 0x03],
    ["timeout", "ttl_expired", 0x06],
    ["permission_denied", "not_allowed", 0x02],
    ["reset", "general_failure", 0x01],
    ["address_in_use", "general_failure", 0x01],
    ["aborted", "general_failure", 0x01],
    ["closed", "general_failure", 0x01],
    ["other", "general_failure", 0x01],
  ];
  for (const [code, reason, rep] of NET_ERRORS) {
    test(`NetError ${code} → REP ${rep.toString(16).padStart(2, "0")} (${reason}), logged and recorded`, async () => {
      const message = `connect failed (${code})`;
      await failedConnect(
        new NetError(code, message),
        [...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 443)],
        socks5Reply(rep),
        (h) => {
          const lines = h.log.entries();
          assert.equal(lines.length, 2);
          assert.equal(lines[0]?.text, "192.0.2.7:40000 5-CON 203.0.113.10:443(ipv4) - direct");
          assert.equal(lines[1]?.level, "warning");
          assert.match(
            lines[1]?.text ?? "",
            new RegExp(
              `^192\\.0\\.2\\.7:40000 5-CON 203\\.0\\.113\\.10:443 direct failed: ${reason}: ` +
                `connect failed \\(${code}\\) ${TIME}$`,
            ),
          );
          assert.equal(h.records.length, 1);
          assert.equal(h.records[0]?.outcome, "failed");
          assert.equal(h.records[0]?.reason, reason);
          assert.equal(h.records[0]?.route, "direct");
        },
      );
    });
  }

  const REASONS: ReadonlyArray<[FailureReason, number]> = [
    ["general_failure", 0x01],
    ["not_allowed", 0x02],
    ["network_unreachable", 0x03],
    ["host_unreachable", 0x04],
    ["connection_refused", 0x05],
    ["ttl_expired", 0x06],
    ["command_not_supported", 0x07],
    ["address_type_not_supported", 0x08],
  ];
  for (const [reason, rep] of REASONS) {
    test(`HopError ${reason} → REP ${rep.toString(16).padStart(2, "0")}; SOCKS4 gets 00 5B`, async () => {
      const error = new HopError("hop.example:1080", reason, `Next hop hop.example:1080 (socks5) said ${reason}`);
      const check = (h: ServerHarness) => {
        assert.match(
          h.log.lines()[1] ?? "",
          new RegExp(`failed: ${reason}: Next hop hop\\.example:1080 \\(socks5\\) said ${reason} `),
        );
        assert.equal(h.records[0]?.reason, reason);
      };
      await failedConnect(error, [...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)], socks5Reply(rep), check);
      await failedConnect(error, socks4Request(1, TARGET_HOST, 80), socks4Reply(0x5b), check);
    });
  }

  test("SOCKS4 failures are VN 0, CD 5B, whatever the NetError", async () => {
    for (const code of ["refused", "timeout", "host_unreachable", "other"] as const) {
      await failedConnect(new NetError(code, "no"), socks4aConnect("example.org", 80, "u"), socks4Reply(0x5b), (h) => {
        assert.match(h.log.lines()[1] ?? "", /^192\.0\.2\.7:40000 4a-CON example\.org:80 direct failed: /);
      });
    }
  });

  test("an error that is not a NetError/HopError (a bug) is a general failure, REP 01", async () => {
    await failedConnect(
      new TypeError("oops"),
      [...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)],
      socks5Reply(1),
      (h) => {
        assert.match(h.log.lines()[1] ?? "", /failed: general_failure: oops /);
      },
    );
  });

  test("a router that fails: the failure reply, route logged as -", async () => {
    const router = { choose: () => Promise.reject(new NetError("not_found", "Cannot resolve nowhere.example")) };
    await withServer({ router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5ConnectDomain("nowhere.example", 80)]);
      await client.read(2);
      await expectFailure(client, socks5Reply(4));
      await h.waitForRecords(1);
      assert.deepEqual(h.log.lines().length, 1);
      assert.match(
        h.log.lines()[0] ?? "",
        new RegExp(
          `^192\\.0\\.2\\.7:40000 5-CON nowhere\\.example:80 - failed: host_unreachable: Cannot resolve nowhere\\.example ${TIME}$`,
        ),
      );
      assert.equal(h.records[0]?.route, "");
    });
  });

  test("the target is refused by the memory network itself (nothing listens): REP 05", async () => {
    const runtime = createMemoryRuntime();
    await withServer({ runtime, router: fixedRouter(runtimeDialer(runtime)) }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect("198.51.100.1", 9)]);
      await client.read(2);
      await expectFailure(client, socks5Reply(5));
      await h.waitForRecords(1);
      assert.match(h.log.lines()[1] ?? "", /failed: connection_refused: connect ECONNREFUSED 198\.51\.100\.1:9 /);
    });
  });
});

describe("CONNECT: a success reply that cannot be encoded", () => {
  test("SOCKS5 with a 300-byte domain BND: REP 01 to the client and the dialled connection closed", async () => {
    const { runtime, target, router } = await network({ bound: { kind: "domain", host: "a".repeat(300), port: 1 } });
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await client.read(2);
      await expectFailure(client, socks5Reply(1));
      const peer = await target.peer();
      await peer.waitForClose(1000);
      assert.equal(runtime.outbound[0]?.closed, true, "the dialled connection leaked");
      await h.waitForRecords(1);
      assert.equal(h.records[0]?.outcome, "failed");
      assert.equal(h.records[0]?.reason, "general_failure");
      assert.match(
        h.log.lines()[1] ?? "",
        /failed: general_failure: Cannot encode SOCKS5 address: domain name must be 1\.\.255 bytes, got 300 /,
      );
    });
  });

  test("SOCKS4 with a BND port out of range: CD 5B and the dialled connection closed", async () => {
    const { runtime, target, router } = await network({ bound: { kind: "ipv4", host: "10.0.0.5", port: 70000 } });
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(1, TARGET_HOST, 80));
      await expectFailure(client, socks4Reply(0x5b));
      await (await target.peer()).waitForClose(1000);
      assert.equal(runtime.outbound[0]?.closed, true, "the dialled connection leaked");
      await h.waitForRecords(1);
      assert.equal(h.records[0]?.outcome, "failed");
    });
  });
});

describe("CONNECT: pipelined and split requests", () => {
  test("greeting, request and payload in one chunk: the payload reaches the target", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80), ...bytesOf("early data")]);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      assert.equal((await client.read(10))[1], 0);
      const peer = await target.peer();
      assert.equal(new TextDecoder().decode(await peer.read(10)), "early data");
      await exchange(client, peer, "more", "ok");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.bytesUp, 14);
    });
  });

  test("the request, FIN and payload pipelined: the payload still reaches the target, then the FIN", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...socks4Request(1, TARGET_HOST, 80), ...bytesOf("bye")]);
      client.end();
      assert.equal((await client.read(8))[1], 0x5a);
      const peer = await target.peer();
      assert.equal(new TextDecoder().decode(await peer.readToEnd()), "bye");
      peer.end();
      await client.readToEnd();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.bytesUp, 3);
      assert.equal(record?.outcome, "done");
    });
  });

  const PAYLOAD = 256 * 1024;
  const pattern = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 7 + (i >> 9)) & 0xff);

  for (const chunked of [false, true]) {
    test(`256 KiB right behind the request (${chunked ? "16 KiB chunks" : "one chunk"}) all reach the target, in order`, async () => {
      const { runtime, target, router } = await network();
      await withServer({ runtime, router }, async (h) => {
        const client = h.client(CLIENT);
        const payload = pattern(PAYLOAD);
        const head = [...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)];
        if (chunked) {
          client.send(head);
          for (let at = 0; at < PAYLOAD; at += 16384) client.send(payload.subarray(at, at + 16384));
        } else {
          const all = new Uint8Array(head.length + PAYLOAD);
          all.set(head);
          all.set(payload, head.length);
          client.send(all);
        }
        client.end();
        assert.deepEqual(list(await client.read(12)).slice(0, 3), [5, 0, 5]);
        const peer = await target.peer();
        const got = await peer.readToEnd(5000);
        assert.equal(got.length, PAYLOAD);
        assert.ok(got.every((byte, i) => byte === payload[i]), "the payload arrived altered");
        peer.end();
        await client.readToEnd();
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.bytesUp, PAYLOAD);
      });
    });
  }

  test("SOCKS5 greeting and request sent one byte at a time", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      for (const byte of SOCKS5_GREETING) {
        client.send([byte]);
        await sleep(1);
      }
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      for (const byte of socks5ConnectDomain("example.org", 80)) {
        client.send([byte]);
        await sleep(1);
      }
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "10.0.0.5", runtime.outbound[0]?.local.port));
      await exchange(client, await target.peer(), "split", "ok");
    });
  });

  test("SOCKS4a request sent one byte at a time", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      for (const byte of socks4aConnect("example.org", 80, "alice")) {
        client.send([byte]);
        await sleep(1);
      }
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, "10.0.0.5", runtime.outbound[0]?.local.port));
      await exchange(client, await target.peer(), "x", "y");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.user, "alice");
    });
  });
});

describe("CONNECT: what happens around the dial", () => {
  test("bytes the target sent during the dial (rest) follow the reply, and its FIN is passed on", async () => {
    let far: ScriptPeer | undefined;
    const dialer: Dialer = {
      dial() {
        const [near, farEnd] = createConnectionPair(
          { host: "10.0.0.5", port: 41000, family: 4 },
          { host: "203.0.113.10", port: 80, family: 4 },
        );
        far = new ScriptPeer(farEnd);
        const result: DialResult = {
          connection: near,
          rest: bytesOf("220 ready\r\n"),
          bound: { kind: "ipv4", host: "10.0.0.5", port: 41000 },
          ended: true,
        };
        return Promise.resolve(result);
      },
    };
    await withServer({ router: fixedRouter(dialer) }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 25)]);
      assert.deepEqual(list(await client.read(12)), [5, 0, ...socks5Reply(0, "10.0.0.5", 41000)]);
      assert.equal(new TextDecoder().decode(await client.readToEnd()), "220 ready\r\n");
      client.send("QUIT\r\n");
      assert.equal(new TextDecoder().decode(await far?.read(6)), "QUIT\r\n");
      client.end();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.bytesDown, 11);
      assert.equal(record?.bytesUp, 6);
      assert.equal(record?.outcome, "done");
    });
  });

  test("data and FIN the client sends while the target is being dialled all reach the target", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, TARGET_HOST, 80);
    const inner = runtimeDialer(runtime);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let dialing: () => void = () => {};
    const started = new Promise<void>((resolve) => (dialing = resolve));
    const dialer: Dialer = {
      async dial(dialTarget, context) {
        dialing();
        await gate;
        return inner.dial(dialTarget, context);
      },
    };
    await withServer({ runtime, router: fixedRouter(dialer) }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await started;
      const payload = Uint8Array.from({ length: 100 * 1024 }, (_, i) => i % 251);
      for (let at = 0; at < payload.length; at += 10 * 1024) client.send(payload.subarray(at, at + 10 * 1024));
      client.end();
      await sleep(5);
      release();
      assert.equal((await client.read(12))[3], 0);
      const peer = await target.peer();
      const got = await peer.readToEnd();
      assert.equal(got.length, payload.length);
      assert.ok(got.every((byte, i) => byte === payload[i]), "the early data arrived altered");
      peer.end();
      await client.readToEnd();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.bytesUp, payload.length);
    });
  });

  test("an IPv6 client is logged in brackets and recorded as is", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client({ host: "2001:db8::7", port: 40000, family: 6 });
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await client.read(12);
      await exchange(client, await target.peer(), "a", "b");
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.client, { host: "2001:db8::7", port: 40000, family: 6 });
      assert.equal(h.log.lines()[0], "[2001:db8::7]:40000 5-CON 203.0.113.10:80(ipv4) - direct");
    });
  });

  test("a client that resets mid-relay ends the session as client_error, with the reason logged", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80), 0x61, 0x62]);
      await client.read(12);
      const peer = await target.peer();
      await peer.read(2);
      (client.connection as MemoryConnectionEnd).reset(new NetError("reset", "read ECONNRESET"));
      await peer.waitForClose(500);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "client_error");
      assert.equal(record?.bytesUp, 2);
      assert.match(h.log.lines()[1] ?? "", / up=2 down=0 time=\d+\.\d{3}s client_error \(read ECONNRESET\)$/);
    });
  });

  test("-o: a silent relaying session is closed as idle_timeout", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router, settings: { idleTimeoutMs: 40 } }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await client.read(12);
      const peer = await target.peer();
      await client.waitForClose(1000);
      await peer.waitForClose(200);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "idle_timeout");
      assert.match(h.log.lines()[1] ?? "", / up=0 down=0 time=\d+\.\d{3}s idle_timeout$/);
    });
  });

  test("--fin-wait: a half-closed session whose other side stays open is closed as fin_wait_timeout", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router, settings: { finWaitMs: 30 } }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect(TARGET_HOST, 80)]);
      await client.read(12);
      const peer = await target.peer();
      client.end();
      await peer.readToEnd();
      await client.waitForClose(1000);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "fin_wait_timeout");
    });
  });
});
