// The srelay metric set: what each finished session's record adds, the
// gauges read at collection, and the records real sessions produce (with
// their handshake and connect times).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { sleep, testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, socks5Connect, socks5Request } from "../../tests/helpers/socks_bytes.ts";
import type { SessionRecord } from "../server/account.ts";
import type { AuthorizeQuestion } from "../server/authorize.ts";
import type { HistogramSample, MetricFamily, ScalarSample } from "./registry.ts";
import { type ProcessReadings, routeKind, ServerMetrics } from "./server_metrics.ts";

before(installLogCapture);
after(removeLogCapture);

const READINGS: ProcessReadings = {
  residentBytes: () => 123_456,
  descriptors: () => ({ open: 40, sockets: 12 }),
};

/** The value of one counter or gauge sample (0 when the series does not exist). */
function value(families: readonly MetricFamily[], name: string, labels: readonly string[] = []): number {
  const family = families.find((f) => f.name === name);
  assert.ok(family, `${name} exists`);
  const sample = family.samples.find((s) => s.labels.join("\0") === labels.join("\0")) as ScalarSample | undefined;
  return sample?.value ?? 0;
}

function histogram(families: readonly MetricFamily[], name: string): HistogramSample | undefined {
  return families.find((f) => f.name === name)?.samples[0] as HistogramSample | undefined;
}

/** A record with every field at its "nothing happened" value, then `fields`. */
function record(fields: Partial<SessionRecord>): SessionRecord {
  return {
    id: 1,
    client: { host: "127.0.0.1", port: 40000, family: 4 },
    version: "5",
    command: "connect",
    target: "example.org:80",
    user: "",
    route: "direct",
    bytesUp: 0,
    bytesDown: 0,
    seconds: 0.1,
    outcome: "done",
    ...fields,
  };
}

describe("routeKind()", () => {
  test("direct, relay, per_datagram, none", () => {
    assert.equal(routeKind("direct"), "direct");
    assert.equal(routeKind("relay=fw:8080,socks:1080"), "relay");
    assert.equal(routeKind("per-datagram"), "per_datagram");
    assert.equal(routeKind(""), "none");
  });
});

describe("ServerMetrics", () => {
  test("each record counts its session, bytes, datagrams, drops, logins, denials and failures", () => {
    const metrics = new ServerMetrics(null, READINGS);
    const before = metrics.collect();
    assert.equal(value(before, "srelay_relayed_bytes_total", ["udp", "down"]), 0, "series exist at 0 from the start");
    assert.equal(value(before, "srelay_auth_attempts_total", ["throttled"]), 0);
    metrics.record(
      record({ bytesUp: 100, bytesDown: 2000, authMethod: "password", handshakeSeconds: 0.002, connectSeconds: 0.03 }),
    );
    metrics.record(
      record({
        command: "udp",
        route: "per-datagram",
        bytesUp: 30,
        bytesDown: 60,
        datagramsUp: 3,
        datagramsDown: 2,
        drops: { foreign_source: 4, fragmented: 1 },
      }),
    );
    metrics.record(record({ outcome: "failed", reason: "connection_refused", handshakeSeconds: 0.001 }));
    metrics.record(
      record({ command: "bind", route: "relay=fw:8080", outcome: "failed", reason: "command_not_supported" }),
    );
    metrics.record(record({ outcome: "not_allowed", route: "" }));
    metrics.record(record({ command: "", version: "", route: "", outcome: "denied_by_tcp_wrappers" }));
    metrics.record(record({ command: "", route: "", outcome: "auth_failed" }));
    metrics.record(record({ command: "", route: "", outcome: "auth_throttled" }));
    metrics.record(record({ command: "", route: "", outcome: "auth_unavailable" }));
    metrics.record(record({ command: "udp", outcome: "too_many_associations", route: "" }));
    metrics.record(record({ command: "bind", outcome: "too_many_binds", route: "" }));
    const after = metrics.collect();
    assert.equal(value(after, "srelay_sessions_total", ["connect", "direct", "done"]), 1);
    assert.equal(value(after, "srelay_sessions_total", ["udp", "per_datagram", "done"]), 1);
    assert.equal(value(after, "srelay_sessions_total", ["connect", "direct", "failed"]), 1);
    assert.equal(value(after, "srelay_sessions_total", ["bind", "relay", "failed"]), 1);
    assert.equal(value(after, "srelay_sessions_total", ["none", "none", "denied_by_tcp_wrappers"]), 1);
    assert.equal(value(after, "srelay_relayed_bytes_total", ["connect", "up"]), 100);
    assert.equal(value(after, "srelay_relayed_bytes_total", ["connect", "down"]), 2000);
    assert.equal(value(after, "srelay_relayed_bytes_total", ["udp", "up"]), 30);
    assert.equal(value(after, "srelay_relayed_bytes_total", ["udp", "down"]), 60);
    assert.equal(value(after, "srelay_udp_datagrams_total", ["up"]), 3);
    assert.equal(value(after, "srelay_udp_datagrams_total", ["down"]), 2);
    assert.equal(value(after, "srelay_udp_dropped_datagrams_total", ["foreign_source"]), 4);
    assert.equal(value(after, "srelay_udp_dropped_datagrams_total", ["fragmented"]), 1);
    assert.equal(value(after, "srelay_auth_attempts_total", ["success"]), 1);
    assert.equal(value(after, "srelay_auth_attempts_total", ["failure"]), 1);
    assert.equal(value(after, "srelay_auth_attempts_total", ["throttled"]), 1);
    assert.equal(value(after, "srelay_auth_attempts_total", ["unavailable"]), 1);
    assert.equal(value(after, "srelay_clients_denied_total", ["tcp_wrappers"]), 1);
    assert.equal(value(after, "srelay_clients_denied_total", ["rules"]), 1);
    assert.equal(value(after, "srelay_request_failures_total", ["connect", "connection_refused"]), 1);
    assert.equal(value(after, "srelay_request_failures_total", ["bind", "command_not_supported"]), 1);
    assert.equal(value(after, "srelay_request_failures_total", ["connect", "not_allowed"]), 1);
    assert.equal(value(after, "srelay_request_failures_total", ["udp", "general_failure"]), 1);
    assert.equal(value(after, "srelay_request_failures_total", ["bind", "general_failure"]), 1);
    assert.equal(histogram(after, "srelay_handshake_duration_seconds")?.count, 2);
    assert.equal(histogram(after, "srelay_connect_duration_seconds")?.count, 1);
    assert.ok(Math.abs((histogram(after, "srelay_connect_duration_seconds")?.sum ?? 0) - 0.03) < 1e-12);
  });

  test("gauges are read at collection: active sessions, -m rejections, memory, descriptors and sockets", () => {
    let active = 2;
    const metrics = new ServerMetrics({ activeSessions: () => active, rejectedSessions: () => 9 }, READINGS);
    const first = metrics.collect();
    assert.equal(value(first, "srelay_sessions_active"), 2);
    assert.equal(value(first, "srelay_sessions_over_limit_total"), 9);
    assert.equal(value(first, "process_resident_memory_bytes"), 123_456);
    assert.equal(value(first, "process_open_fds"), 40);
    assert.equal(value(first, "srelay_open_sockets"), 12);
    active = 0;
    assert.equal(value(metrics.collect(), "srelay_sessions_active"), 0);
  });

  test("without /proc/self/fd there are no descriptor gauges", () => {
    const metrics = new ServerMetrics(null, { residentBytes: () => 1, descriptors: () => null });
    const names = metrics.collect().map((f) => f.name);
    assert.ok(!names.includes("process_open_fds"));
    assert.ok(names.includes("process_resident_memory_bytes"));
  });

  test("the real readings of this process are plausible", () => {
    const families = new ServerMetrics(null).collect();
    assert.ok(value(families, "process_resident_memory_bytes") > 1024 * 1024);
    if (families.some((f) => f.name === "process_open_fds")) {
      assert.ok(value(families, "process_open_fds") >= 3);
    }
  });

  test("sessions of a real server: records carry auth method, handshake and connect times", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80, { echo: true });
    const authorizer = {
      authorize: (question: AuthorizeQuestion) =>
        question.request.command === "bind"
          ? { allowed: false as const, reason: "test.rules:1" }
          : { allowed: true as const },
    };
    const policy = testPolicy(fixedRouter(runtimeDialer(runtime)), { authorizer });
    await withServer({ runtime, policy }, async (h) => {
      const ok = h.client();
      ok.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80), 0x61, 0x62, 0x63]);
      await ok.read(13);
      ok.end();
      await ok.readToEnd();
      await target.peer(0);
      const refused = h.client();
      refused.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 81)]);
      await refused.readToEnd();
      refused.close();
      const bind = h.client();
      bind.send([...SOCKS5_GREETING, ...socks5Request(2, "0.0.0.0", 0)]);
      await bind.readToEnd();
      bind.close();
      const junk = h.client();
      junk.send([0x47]);
      await junk.readToEnd();
      junk.close();
      await h.waitForIdle();
      await sleep(10);
      const metrics = new ServerMetrics(null, READINGS);
      for (const r of h.records) metrics.record(r);
      const done = h.records.find((r) => r.outcome === "done");
      assert.equal(done?.authMethod, "none");
      assert.ok((done?.handshakeSeconds ?? -1) >= 0);
      assert.ok((done?.connectSeconds ?? -1) >= 0);
      assert.ok((done?.handshakeSeconds ?? 0) <= (done?.seconds ?? 0));
      const junkRecord = h.records.find((r) => r.outcome === "handshake_failed");
      assert.equal(junkRecord?.handshakeSeconds, undefined);
      assert.equal(junkRecord?.authMethod, "");
      assert.equal(h.records.find((r) => r.outcome === "failed")?.connectSeconds, undefined);
      const families = metrics.collect();
      assert.equal(value(families, "srelay_sessions_total", ["connect", "direct", "done"]), 1);
      assert.equal(value(families, "srelay_sessions_total", ["connect", "direct", "failed"]), 1);
      assert.equal(value(families, "srelay_sessions_total", ["bind", "none", "not_allowed"]), 1);
      assert.equal(value(families, "srelay_sessions_total", ["none", "none", "handshake_failed"]), 1);
      assert.equal(value(families, "srelay_relayed_bytes_total", ["connect", "up"]), 3);
      assert.equal(value(families, "srelay_relayed_bytes_total", ["connect", "down"]), 3);
      assert.equal(value(families, "srelay_clients_denied_total", ["rules"]), 1);
      assert.equal(value(families, "srelay_request_failures_total", ["connect", "connection_refused"]), 1);
      assert.equal(histogram(families, "srelay_handshake_duration_seconds")?.count, 3);
      assert.equal(histogram(families, "srelay_connect_duration_seconds")?.count, 1);
    });
  });
});
