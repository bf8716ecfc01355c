import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { renderMessage } from "./line_format.ts";
import {
  describeSyslogError,
  formatSyslogLine,
  openSyslogSink,
  type SyslogOpeners,
  type SyslogReport,
} from "./syslog_sink.ts";
import type { SyslogAddress } from "./syslog_address.ts";

const AT = new Date(2026, 10, 25, 16, 8, 21).getTime();
const LOCAL = { hostname: null, tag: "srelay", pid: 10686 };

function record(level: LogRecord["level"], message: unknown[], timestamp = AT): LogRecord {
  return { category: ["srelay"], level, message, rawMessage: "", timestamp, properties: {} };
}

/** A transport that records datagrams and fails while `failing` is set. */
function fakeOpeners(options: { refuse?: string } = {}) {
  const sent: string[] = [];
  const opened: string[] = [];
  const state = { failing: null as string | null, closed: false };
  let report: SyslogReport = () => {};
  const open = (where: string, callback: SyslogReport) => {
    if (options.refuse !== undefined) {
      return Promise.reject(Object.assign(new Error(options.refuse), { code: options.refuse }));
    }
    opened.push(where);
    report = callback;
    return Promise.resolve({
      send(datagram: Uint8Array) {
        if (state.failing !== null) return report(state.failing);
        sent.push(new TextDecoder().decode(datagram));
        report(null);
      },
      close() {
        state.closed = true;
        return Promise.resolve();
      },
    });
  };
  const openers: SyslogOpeners = {
    unix: (path, callback) => open(path, callback),
    udp: (host, port, callback) => open(`${host}:${port}`, callback),
  };
  return { openers, sent, opened, state };
}

function sinkOptions(address: SyslogAddress, openers: SyslogOpeners, warnings: string[], clock = { now: AT }) {
  return {
    address,
    openers,
    render: renderMessage,
    hostname: "gw",
    pid: 10686,
    warn: (text: string) => warnings.push(text),
    now: () => clock.now,
  };
}

describe("formatSyslogLine()", () => {
  test("writes syslog(3)'s line: <PRI>, time stamp, tag[pid]: message, facility daemon", () => {
    assert.equal(
      formatSyslogLine("info", AT, "127.0.0.1:52472 5-CON example.org:443 direct", LOCAL),
      "<30>Nov 25 16:08:21 srelay[10686]: 127.0.0.1:52472 5-CON example.org:443 direct",
    );
  });

  test("maps every level to its severity; fatal is crit, never emerg", () => {
    const pri = (level: LogRecord["level"]) => formatSyslogLine(level, AT, "m", LOCAL).slice(0, 4);
    assert.deepEqual(
      (["trace", "debug", "info", "warning", "error", "fatal"] as const).map(pri),
      ["<31>", "<31>", "<30>", "<28>", "<27>", "<26>"],
    );
  });

  test("puts the host name after the time stamp for a remote collector; pads the day with a space", () => {
    assert.equal(
      formatSyslogLine("error", new Date(2026, 0, 5, 9, 3, 7).getTime(), "bad", { ...LOCAL, hostname: "gw" }),
      "<27>Jan  5 09:03:07 gw srelay[10686]: bad",
    );
  });
});

describe("openSyslogSink()", () => {
  test("sends one datagram per record to the Unix socket, without a host name or newline", async () => {
    const fake = fakeOpeners();
    const warnings: string[] = [];
    const sink = await openSyslogSink(sinkOptions({ kind: "unix", path: "/dev/log" }, fake.openers, warnings));
    sink(record("info", ["", "127.0.0.1:1", " 5-CON ", "a:80", " up=", 42, ""]));
    sink(record("warning", ["open proxy"]));
    await sink[Symbol.asyncDispose]();
    assert.deepEqual(fake.opened, ["/dev/log"]);
    assert.deepEqual(fake.sent, [
      "<30>Nov 25 16:08:21 srelay[10686]: 127.0.0.1:1 5-CON a:80 up=42",
      "<28>Nov 25 16:08:21 srelay[10686]: open proxy",
    ]);
    assert.equal(fake.state.closed, true);
    assert.deepEqual(warnings, []);
  });

  test("over UDP the line carries the host name; a rendered line's newline is dropped", async () => {
    const fake = fakeOpeners();
    const options = sinkOptions({ kind: "udp", host: "::1", port: 514 }, fake.openers, []);
    const sink = await openSyslogSink({ ...options, render: () => `{"message":"x"}\n` });
    sink(record("info", ["x"]));
    assert.deepEqual(fake.opened, ["::1:514"]);
    assert.deepEqual(fake.sent, [`<30>Nov 25 16:08:21 gw srelay[10686]: {"message":"x"}`]);
  });

  test("a socket that cannot be opened rejects with the address and the reason", async () => {
    const fake = fakeOpeners({ refuse: "ECONNREFUSED" });
    await assert.rejects(
      openSyslogSink(sinkOptions({ kind: "unix", path: "/run/nothing" }, fake.openers, [])),
      { message: "cannot log to syslog at /run/nothing: nothing receives on it (ECONNREFUSED)" },
    );
  });

  test("drops lines while sending fails, warns once, and notes the count once sending works", async () => {
    const fake = fakeOpeners();
    const warnings: string[] = [];
    const clock = { now: AT };
    const sink = await openSyslogSink(sinkOptions({ kind: "unix", path: "/dev/log" }, fake.openers, warnings, clock));
    fake.state.failing = "ECONNREFUSED";
    for (let i = 0; i < 3; i++) sink(record("info", [`lost ${i}`]));
    assert.deepEqual(warnings, [
      "syslog: cannot send to /dev/log: nothing receives on it (ECONNREFUSED); log lines are dropped while this lasts",
    ]);
    fake.state.failing = null;
    sink(record("info", ["back"]));
    assert.deepEqual(fake.sent, [
      "<30>Nov 25 16:08:21 srelay[10686]: back",
      "<28>Nov 25 16:08:21 srelay[10686]: syslog: dropped 3 log lines (ECONNREFUSED)",
    ]);

    // A second outage within a minute: no second warning, and the note waits.
    fake.state.failing = "EAGAIN";
    sink(record("info", ["lost again"]));
    fake.state.failing = null;
    sink(record("info", ["ok"]));
    assert.equal(fake.sent.length, 3);
    clock.now += 60_000;
    sink(record("info", ["later"]));
    assert.equal(fake.sent[4], "<28>Nov 25 16:09:21 srelay[10686]: syslog: dropped 1 log line (EAGAIN)");
    assert.equal(warnings.length, 1);

    // Drops never noted in syslog are reported at close.
    fake.state.failing = "ENOBUFS";
    sink(record("info", ["lost at the end"]));
    await sink[Symbol.asyncDispose]();
    assert.equal(warnings[1], "syslog: dropped 1 log line for /dev/log (ENOBUFS)");
  });
});

describe("describeSyslogError()", () => {
  test("explains the usual codes and keeps unknown ones", () => {
    assert.equal(describeSyslogError("ENOENT"), "no such socket (ENOENT)");
    assert.equal(describeSyslogError("EWHATEVER"), "EWHATEVER");
  });
});
