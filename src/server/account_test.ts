// The account stage: session records for recorders, and log lines that
// wait for a pending client label (-r) without holding up the session.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NetAddress } from "../runtime/types.ts";
import { NetError } from "../runtime/types.ts";
import {
  failingDialer,
  fixedRouter,
  runtimeDialer,
  startTarget,
  type TestTarget,
} from "../../tests/helpers/fake_dialer.ts";
import { captureLogger, installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { eventually, type ServerHarness, sleep, testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, socks5Connect, socks5Reply, socks5Request } from "../../tests/helpers/socks_bytes.ts";
import { SessionAccount, type SessionRecord } from "./account.ts";
import type { AuthorizeQuestion } from "./authorize.ts";
import { SOCKS5_RESPONDER } from "./responder.ts";

const CLIENT = { host: "192.0.2.7", port: 40000, family: 4 as const };

before(installLogCapture);
after(removeLogCapture);

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

/** A `labelClient` whose answers wait until the test calls `release()`. */
function pendingLabels() {
  const asked: NetAddress[] = [];
  let release: (() => void) | undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    asked,
    release: () => release?.(),
    labelClient(address: NetAddress): Promise<string> {
      asked.push(address);
      return released.then(() => `client.example[${address.host}]:${address.port}`);
    },
  };
}

/** The steps of the -r test: everything happens before `labels.release()` but the log lines. */
async function relayBeforeLabel(h: ServerHarness, target: TestTarget, labels: ReturnType<typeof pendingLabels>) {
  const client = h.client(CLIENT);

  client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
  assert.deepEqual(list(await client.read(12)).slice(0, 4), [5, 0, 5, 0]);
  const peer = await target.peer();
  client.send("ping");
  assert.equal(new TextDecoder().decode(await peer.read(4)), "ping");
  peer.send("pong");
  assert.equal(new TextDecoder().decode(await client.read(4)), "pong");
  assert.deepEqual(labels.asked, [CLIENT]);
  assert.deepEqual(h.log.lines(), [], "a line was logged before the label was known");
  labels.release();
  await h.log.waitFor(/5-CON/);
  assert.deepEqual(h.log.lines(), ["client.example[192.0.2.7]:40000 5-CON 203.0.113.10:80(ipv4) - direct"]);
  client.end();
  await peer.readToEnd();
  peer.end();
  await client.readToEnd();
  await h.waitForRecords(1);
  assert.equal(h.log.lines().length, 2);
  assert.match(
    h.log.lines()[1] ?? "",
    /^client\.example\[192\.0\.2\.7\]:40000 5-CON 203\.0\.113\.10:80 direct bound=10\.0\.0\.5:\d+ up=4 down=4 /,
  );
}

describe("-r: the client label off the data path", () => {
  test("a CONNECT is dialled, answered and relays before the label resolves; the lines follow in order", async () => {
    const runtime = createMemoryRuntime({ sourceHost4: "10.0.0.5" });
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const labels = pendingLabels();
    // The label is released in `finally` too, so a session stuck on it cannot stall the shutdown.
    await withServer(
      { runtime, router: fixedRouter(runtimeDialer(runtime)), labelClient: labels.labelClient },
      (h) => relayBeforeLabel(h, target, labels).finally(labels.release),
    );
  });

  test("a session that ends before its label resolves: its record is not held back, its lines come later, in order", async () => {
    const labels = pendingLabels();
    const router = fixedRouter(failingDialer(new NetError("refused", "connect ECONNREFUSED 203.0.113.10:80")));
    await withServer({ router, labelClient: labels.labelClient }, async (h) => {
      try {
        const client = h.client(CLIENT);
        client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
        assert.deepEqual(list(await client.readToEnd()), [5, 0, ...socks5Reply(5)]);
        client.close();
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "failed");
        await sleep(5);
        assert.deepEqual(h.log.lines(), []);
        labels.release();
        await eventually(() => h.log.lines().length === 2, "both lines");
        assert.equal(h.log.lines()[0], "client.example[192.0.2.7]:40000 5-CON 203.0.113.10:80(ipv4) - direct");
        assert.match(
          h.log.lines()[1] ?? "",
          /^client\.example\[192\.0\.2\.7\]:40000 5-CON 203\.0\.113\.10:80 direct failed: connection_refused: /,
        );
      } finally {
        labels.release(); // a session stuck on its label must not stall the shutdown
      }
    });
  });
});

describe("session records", () => {
  test("one record per session, whatever the outcome, with distinct ids", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80, { echo: true });
    // BIND is refused on purpose by the destination rules.
    const authorizer = {
      authorize: (question: AuthorizeQuestion) =>
        question.request.command === "bind"
          ? { allowed: false as const, reason: "test.rules:1" }
          : { allowed: true as const },
    };
    const policy = testPolicy(fixedRouter(runtimeDialer(runtime)), { authorizer });
    await withServer({ runtime, policy }, async (h) => {
      // done
      const ok = h.client();
      ok.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80), 0x61]);
      assert.equal(new TextDecoder().decode((await ok.read(13)).subarray(12)), "a");
      ok.end();
      await ok.readToEnd();
      await target.peer(0);
      // failed (nothing listens on port 81)
      const refused = h.client();
      refused.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 81)]);
      await refused.readToEnd();
      refused.close();
      // refused on purpose (BIND)
      const bind = h.client();
      bind.send([...SOCKS5_GREETING, ...socks5Request(2, "0.0.0.0", 0)]);
      await bind.readToEnd();
      bind.close();
      // handshake failed
      const junk = h.client();
      junk.send([0x47]);
      await junk.readToEnd();
      junk.close();
      await h.waitForIdle();
      await sleep(10);
      const outcomes = h.records.map((record: SessionRecord) => record.outcome).sort();
      assert.deepEqual(outcomes, ["done", "failed", "handshake_failed", "not_allowed"]);
      assert.deepEqual(h.records.map((record) => record.id).sort(), [1, 2, 3, 4]);
      const done = h.records.find((record) => record.outcome === "done");
      assert.equal(done?.bytesUp, 1);
      assert.equal(done?.bytesDown, 1);
      assert.equal(h.records.find((record) => record.outcome === "failed")?.reason, "connection_refused");
    });
  });

  test("SessionAccount ends its record once: a later end is ignored, every recorder gets it", () => {
    const log = captureLogger();
    const a: SessionRecord[] = [];
    const b: SessionRecord[] = [];
    const account = new SessionAccount(log.logger, [(r) => a.push(r), (r) => b.push(r)], 7, CLIENT);
    account.setRequest({
      version: "5",
      command: "connect",
      target: { kind: "domain", host: "example.org", port: 443 },
      userId: "",
      responder: SOCKS5_RESPONDER,
    }, "alice");
    account.requested("direct");
    account.failed("ttl_expired", new NetError("timeout", "timed out"));
    account.finished({ kind: "ipv4", host: "10.0.0.5", port: 1 }, { bytesUp: 1, bytesDown: 2, outcome: "done" });
    assert.equal(a.length, 1);
    assert.equal(b.length, 1);
    assert.equal(a[0]?.id, 7);
    assert.equal(a[0]?.user, "alice");
    assert.equal(a[0]?.target, "example.org:443");
    assert.equal(a[0]?.outcome, "failed");
    assert.equal(a[0]?.reason, "ttl_expired");
    assert.equal(log.lines()[0], "192.0.2.7:40000 5-CON example.org:443(fqdn) alice direct");
    assert.match(
      log.lines()[1] ?? "",
      /^192\.0\.2\.7:40000 5-CON example\.org:443 direct failed: ttl_expired: timed out time=\d+\.\d{3}s$/,
    );
  });
});
