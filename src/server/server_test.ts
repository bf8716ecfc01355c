// SocksServer on the memory runtime: the session limit, the handshake
// timeout, graceful shutdown, the accept-error log and policy snapshots.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NetError } from "../runtime/types.ts";
import {
  failingDialer,
  fixedRouter,
  hangingDialer,
  runtimeDialer,
  startTarget,
  type TestTarget,
} from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import type { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import {
  eventually,
  type ServerHarness,
  sleep,
  startServer,
  testPolicy,
  withServer,
} from "../../tests/helpers/server_script.ts";
import {
  socks4Reply,
  socks4Request,
  SOCKS5_GREETING,
  SOCKS5_NO_AUTH_SELECTED,
  socks5Connect,
  socks5Reply,
} from "../../tests/helpers/socks_bytes.ts";

before(installLogCapture);
after(removeLogCapture);

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

/** Runs `body` with `Date.now()` moved forward by whatever `advance(ms)` added. */
async function withClock(body: (advance: (ms: number) => void) => Promise<void>): Promise<void> {
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  try {
    await body((ms) => (offset += ms));
  } finally {
    Date.now = realNow;
  }
}

/** Resolves "done" when `promise` settles within `ms`, else "timeout"; the timer never outlives it. */
async function within(promise: Promise<unknown>, ms: number): Promise<"done" | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise.then(() => "done" as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A network with a plain target at 203.0.113.10:80 and a dialer that reaches it. */
async function network(): Promise<
  { runtime: MemoryRuntime; target: TestTarget; router: ReturnType<typeof fixedRouter> }
> {
  const runtime = createMemoryRuntime();
  const target = await startTarget(runtime, "203.0.113.10", 80);
  return { runtime, target, router: fixedRouter(runtimeDialer(runtime)) };
}

/** Opens a SOCKS5 CONNECT session that is relaying; returns the client and the target's peer. */
async function relaying(h: ServerHarness, target: TestTarget, index = 0): Promise<[ScriptPeer, ScriptPeer]> {
  const client = h.client();
  client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
  assert.equal((await client.read(12))[1], 0);
  return [client, await target.peer(index)];
}

describe("-m: the session limit", () => {
  test("the N+1th client is closed at once; one rate-limited line; a freed slot serves again", async () => {
    await withClock(async (advance) => {
      await withServer({ maxSessions: 1 }, async (h) => {
        const first = h.client({ host: "192.0.2.1", port: 1001, family: 4 });
        await eventually(() => h.server.activeSessions === 1, "the first session");
        const second = h.client({ host: "192.0.2.2", port: 1002, family: 4 });
        const third = h.client({ host: "192.0.2.3", port: 1003, family: 4 });
        second.send(SOCKS5_GREETING);
        await second.waitForClose(200);
        await third.waitForClose(200);
        assert.equal(second.receivedLength + third.receivedLength, 0);
        assert.equal(h.server.activeSessions, 1);
        const lines = h.log.entries();
        assert.deepEqual(lines.map((line) => [line.level, line.text]), [
          ["warning", "192.0.2.2:1002 closed: 1 sessions already running (-m 1); 1 rejected so far"],
        ]);
        assert.equal(lines[0]?.properties.outcome, "over_limit");
        advance(1001);
        const fourth = h.client({ host: "192.0.2.4", port: 1004, family: 4 });
        await fourth.waitForClose(200);
        assert.equal(h.log.lines()[1], "192.0.2.4:1004 closed: 1 sessions already running (-m 1); 3 rejected so far");
        first.close();
        await h.waitForIdle();
        const fifth = h.client();
        fifth.send(SOCKS5_GREETING);
        assert.deepEqual(list(await fifth.read(2)), SOCKS5_NO_AUTH_SELECTED);
        assert.equal(h.records.length, 1, "a rejected client is not a session");
      });
    });
  });
});

describe("the handshake timeout", () => {
  const cases: Array<[string, number[], number[]]> = [
    ["a client that sends nothing", [], []],
    ["a client stalled in its greeting", [5], []],
    ["a client stalled in its request", [...SOCKS5_GREETING, 5, 1, 0], [...SOCKS5_NO_AUTH_SELECTED]],
    ["a SOCKS4 client stalled before its USERID's NUL", [4, 1, 0, 80, 1, 2, 3, 4, 0x61], []],
  ];
  for (const [name, sent, answer] of cases) {
    test(`${name} is closed after 50 ms with "Handshake not completed within"`, async () => {
      await withServer({ settings: { handshakeTimeoutMs: 50 } }, async (h) => {
        const started = Date.now();
        const client = h.client({ host: "192.0.2.9", port: 999, family: 4 });
        if (sent.length > 0) client.send(sent);
        assert.deepEqual(list(await client.readToEnd(1000)), answer);
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 40, `closed after ${elapsed} ms, before the timeout`);
        client.close();
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "handshake_failed");
        const line = h.log.entries().at(-1);
        assert.equal(line?.level, "warning");
        assert.equal(line?.text, "192.0.2.9:999 handshake failed: Handshake not completed within 0.05 s");
      });
    });
  }
});

describe("graceful shutdown", () => {
  test("with no session it resolves at once and stops listening", async () => {
    const h = await startServer();
    assert.equal(await within(h.server.shutdown(10_000), 500), "done");
    assert.equal(h.server.draining, true);
    assert.equal(h.runtime.isListening("127.0.0.1", 1080), false);
    assert.throws(() => h.runtime.dial(h.address), (error: unknown) => error instanceof NetError);
  });

  test("waits for a running session to finish by itself, within the grace period", async () => {
    const { runtime, target, router } = await network();
    const h = await startServer({ runtime, router });
    const [client, peer] = await relaying(h, target);
    let finished = false;
    const started = Date.now();
    const shutdown = h.server.shutdown(5000).then(() => (finished = true));
    assert.throws(() => runtime.dial(h.address), /ECONNREFUSED/);
    await sleep(30);
    assert.equal(finished, false, "shutdown did not wait for the session");
    client.send("still here");
    assert.equal(new TextDecoder().decode(await peer.read(10)), "still here");
    client.end();
    await peer.readToEnd();
    peer.end();
    await client.readToEnd();
    assert.equal(await within(shutdown, 1000), "done");
    assert.ok(Date.now() - started < 2000);
    assert.equal(h.records[0]?.outcome, "done");
    assert.ok(!h.log.lines().some((line) => line.startsWith("Grace period over")));
  });

  test("closes a relaying session left when the grace period ends", async () => {
    const { runtime, target, router } = await network();
    const h = await startServer({ runtime, router });
    const [client, peer] = await relaying(h, target);
    const started = Date.now();
    assert.equal(await within(h.server.shutdown(50), 1500), "done");
    assert.ok(Date.now() - started >= 45, "shutdown did not wait for the grace period");
    await client.waitForClose(200);
    await peer.waitForClose(200);
    assert.equal(h.records[0]?.outcome, "aborted");
    assert.ok(h.log.lines().includes("Grace period over: closing 1 sessions"), h.log.lines().join("\n"));
    assert.match(h.log.lines().at(-1) ?? "", / up=0 down=0 time=\d+\.\d{3}s aborted$/);
  });

  test("a session stuck in its handshake is closed at once when the grace period ends", async () => {
    const h = await startServer({ settings: { handshakeTimeoutMs: 30_000 } });
    const client = h.client({ host: "192.0.2.9", port: 999, family: 4 });
    client.send([5]);
    await eventually(() => h.server.activeSessions === 1, "the session");
    assert.equal(await within(h.server.shutdown(50), 1500), "done");
    await client.waitForClose(200);
    assert.equal(client.receivedLength, 0);
    assert.deepEqual(h.log.lines().slice(-1), ["192.0.2.9:999 handshake failed: Server is shutting down"]);
  });

  test("a session stuck in its dial gets REP 01 and is closed at once when the grace period ends", async () => {
    const dialer = hangingDialer();
    const h = await startServer({ router: fixedRouter(dialer) });
    const client = h.client();
    client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
    await dialer.started;
    assert.equal(await within(h.server.shutdown(50), 1500), "done");
    assert.deepEqual(list(await client.readToEnd(200)), [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(1)]);
    await client.waitForClose(200);
    assert.equal(dialer.calls[0]?.aborted, true);
    assert.match(h.log.lines().at(-1) ?? "", /5-CON 203\.0\.113\.10:80 direct failed: general_failure: Dial aborted /);
  });

  // A client that got its last reply but never closes holds the session in
  // sendAndClose's 2 s linger; shutdown(50) must not wait for it.
  const lingering: Array<[string, number[], number[], () => ReturnType<typeof fixedRouter>]> = [
    [
      "a failed BIND (its peer's name does not resolve)",
      [...SOCKS5_GREETING, 5, 2, 0, 3, 7, ...new TextEncoder().encode("nowhere"), 0, 21],
      socks5Reply(4),
      () => fixedRouter(failingDialer(new Error("unused"))),
    ],
    [
      "a malformed request (ATYP 09)",
      [...SOCKS5_GREETING, 5, 1, 0, 9],
      socks5Reply(8),
      () => fixedRouter(failingDialer(new Error("unused"))),
    ],
    [
      "a failed dial",
      [...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)],
      socks5Reply(5),
      () => fixedRouter(failingDialer(new NetError("refused", "refused"))),
    ],
  ];
  for (const [name, sent, reply, router] of lingering) {
    test(`shutdown(50) after ${name}, with a client that never closes, resolves well before 2 s`, async () => {
      const h = await startServer({ router: router() });
      const client = h.client();
      client.send(sent);
      assert.deepEqual(list(await client.readToEnd()), [...SOCKS5_NO_AUTH_SELECTED, ...reply]);
      const started = Date.now();
      assert.equal(await within(h.server.shutdown(50), 1500), "done", "shutdown overran the grace period");
      assert.ok(Date.now() - started < 1000);
      await client.waitForClose(200);
    });
  }

  test("a first byte that is not SOCKS, with a client that never closes: shutdown(50) resolves well before 2 s", async () => {
    const h = await startServer();
    const client = h.client();
    client.send([0x16, 3, 1]);
    await client.readToEnd();
    assert.equal(await within(h.server.shutdown(50), 1500), "done", "shutdown overran the grace period");
    await client.waitForClose(200);
  });
});

describe("graceful shutdown: stages that cannot hear it", () => {
  // The router may resolve names to match address rules (the resolver's
  // timeout is 10 s). A session routing when the grace period ends should be
  // closed at once like one that is dialling; RouteRequest carries no signal,
  // so shutdown waits for the router. Here the router takes 3 s.
  test("a session stuck in routing is closed at once when the grace period ends", async () => {
    let routing: () => void = () => {};
    const started = new Promise<void>((resolve) => (routing = resolve));
    const router = {
      choose: () => {
        routing();
        return sleep(3000).then(() => ({
          dialer: failingDialer(new NetError("not_found", "no such host")),
          description: "direct",
        }));
      },
    };
    const h = await startServer({ router });
    const client = h.client();
    client.send([...SOCKS5_GREETING, 5, 1, 0, 3, 7, ...new TextEncoder().encode("example"), 0, 80]);
    await started;
    const outcome = await within(h.server.shutdown(50), 1500);
    await h.server.shutdown(0);
    assert.equal(outcome, "done", "shutdown(50) waited for the router");
  });
});

describe("the accept-error log", () => {
  test("a burst of accept failures logs one line; the next line, after the interval, carries the count", async () => {
    await withClock(async (advance) => {
      await withServer({}, async (h) => {
        for (let i = 0; i < 20; i++) assert.equal(h.runtime.failAccept(h.address), true);
        const lines = h.log.entries();
        assert.deepEqual(lines.map((line) => [line.level, line.text]), [
          [
            "error",
            "Cannot accept connections: accept EMFILE: too many open files (1 failures since the last report); retrying",
          ],
        ]);
        assert.equal(lines[0]?.properties.outcome, "accept_failed");
        advance(500);
        h.runtime.failAccept(h.address);
        assert.equal(h.log.lines().length, 1);
        advance(600);
        h.runtime.failAccept(h.address, new NetError("other", "accept ENFILE: file table overflow"));
        assert.deepEqual(h.log.lines().slice(1), [
          "Cannot accept connections: accept ENFILE: file table overflow (21 failures since the last report); retrying",
        ]);
        assert.equal(h.log.entries()[1]?.properties.count, 21);
        // The server still serves.
        const client = h.client();
        client.send(SOCKS5_GREETING);
        assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      });
    });
  });
});

describe("the policy snapshot", () => {
  test("is read once per session: a swap mid-session keeps the old router, a new session gets the new one", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const oldRouter = fixedRouter(runtimeDialer(runtime), "relay=old.example:1080");
    const newRouter = fixedRouter(runtimeDialer(runtime), "relay=new.example:1080");
    await withServer({ runtime, router: oldRouter }, async (h) => {
      const early = h.client({ host: "192.0.2.1", port: 1, family: 4 });
      early.send(SOCKS5_GREETING);
      assert.deepEqual(list(await early.read(2)), SOCKS5_NO_AUTH_SELECTED);
      h.setPolicy(testPolicy(newRouter, { negotiation: { socks5: [], socks4: false } }));
      early.send(socks5Connect("203.0.113.10", 80));
      assert.equal((await early.read(10))[1], 0);
      const late = h.client({ host: "192.0.2.2", port: 2, family: 4 });
      late.send(socks4Request(1, "203.0.113.10", 80));
      assert.deepEqual(list(await late.readToEnd()), socks4Reply(0x5b), "the new policy refuses SOCKS4");
      late.close();
      assert.equal(oldRouter.requests.length, 1);
      assert.equal(newRouter.requests.length, 0);
      assert.equal(h.policyReads, 2);
      assert.ok(h.log.lines().includes("192.0.2.1:1 5-CON 203.0.113.10:80(ipv4) - relay=old.example:1080"));
      early.close();
      await (await target.peer()).waitForClose();
    });
  });

  test("a session accepted before the swap keeps the old negotiation policy too", async () => {
    const { runtime, target, router } = await network();
    await withServer({ runtime, router }, async (h) => {
      const client = h.client();
      await eventually(() => h.policyReads === 1, "the policy read");
      h.setPolicy(testPolicy(router, { negotiation: { socks5: [], socks4: false } }));
      client.send(socks4Request(1, "203.0.113.10", 80));
      assert.equal((await client.read(8))[1], 0x5a);
      client.close();
      await (await target.peer()).waitForClose();
    });
  });
});
