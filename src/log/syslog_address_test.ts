import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_SYSLOG_ADDRESS, formatSyslogAddress, parseSyslogAddress } from "./syslog_address.ts";

describe("parseSyslogAddress()", () => {
  test("an absolute path is a Unix datagram socket", () => {
    assert.deepEqual(parseSyslogAddress("/dev/log"), DEFAULT_SYSLOG_ADDRESS);
  });

  test("an IPv6 literal without a port gets the syslog port, 514", () => {
    assert.deepEqual(parseSyslogAddress("[2001:db8::1]"), { kind: "udp", host: "2001:db8::1", port: 514 });
    assert.deepEqual(parseSyslogAddress("2001:db8::1"), { kind: "udp", host: "2001:db8::1", port: 514 });
    assert.deepEqual(parseSyslogAddress("[::1]:5140"), { kind: "udp", host: "::1", port: 5140 });
  });

  test("HOST and HOST:PORT are UDP collectors; an empty host is 127.0.0.1", () => {
    assert.deepEqual(parseSyslogAddress("logs.example"), { kind: "udp", host: "logs.example", port: 514 });
    assert.deepEqual(parseSyslogAddress("10.0.0.9:1514"), { kind: "udp", host: "10.0.0.9", port: 1514 });
    assert.deepEqual(parseSyslogAddress(":1514"), { kind: "udp", host: "127.0.0.1", port: 1514 });
  });

  const mistakes: Array<[string, RegExp]> = [
    ["run/log", /must be absolute/],
    ["[::1", /lacks the '\]'/],
    ["[::1]x", /after '\]'/],
    ["[example]", /not an IPv6 address/],
    ["1:2:3", /\[ADDRESS\]:PORT/],
    ["host:0", /port '0'/],
    ["host:65536", /port '65536'/],
    ["host:x", /port 'x'/],
  ];
  for (const [text, message] of mistakes) {
    test(`rejects '${text}'`, () => {
      assert.throws(() => parseSyslogAddress(text), (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

describe("formatSyslogAddress()", () => {
  test("writes addresses back as the user would", () => {
    assert.equal(formatSyslogAddress({ kind: "udp", host: "::1", port: 514 }), "[::1]:514");
    assert.equal(formatSyslogAddress({ kind: "udp", host: "logs.example", port: 5140 }), "logs.example:5140");
    assert.equal(formatSyslogAddress(DEFAULT_SYSLOG_ADDRESS), "/dev/log");
  });
});
