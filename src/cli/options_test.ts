import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_CONFIG_FILE, parseCliOptions, UsageError } from "./options.ts";

describe("parseCliOptions()", () => {
  test("defaults match srelay: every address on 1080, no idle timeout, no auth", () => {
    const options = parseCliOptions([]);
    assert.deepEqual(options.listen, [{ host: null, port: 1080 }]);
    assert.equal(options.idleTimeoutMs, 0);
    assert.equal(options.maxSessions, 0);
    assert.deepEqual(options.authMethods, ["none"]);
    assert.deepEqual(options.config, { path: DEFAULT_CONFIG_FILE, explicit: false });
    assert.equal(options.foreground, false);
    assert.equal(options.handshakeTimeoutMs, 30_000);
    assert.equal(options.io, "native");
    assert.deepEqual(options.syslogAddress, { kind: "unix", path: "/dev/log" });
  });

  const syslogAddresses: Array<[string, unknown]> = [
    ["/run/systemd/journal/dev-log", { kind: "unix", path: "/run/systemd/journal/dev-log" }],
    ["127.0.0.1:5140", { kind: "udp", host: "127.0.0.1", port: 5140 }],
    ["logs.example", { kind: "udp", host: "logs.example", port: 514 }],
    [":5140", { kind: "udp", host: "127.0.0.1", port: 5140 }],
    ["[::1]", { kind: "udp", host: "::1", port: 514 }],
    ["[::1]:5140", { kind: "udp", host: "::1", port: 5140 }],
    ["::1", { kind: "udp", host: "::1", port: 514 }],
  ];
  for (const [text, expected] of syslogAddresses) {
    test(`--syslog-address ${text}`, () => {
      assert.deepEqual(parseCliOptions(["--syslog-address", text]).syslogAddress, expected);
    });
  }

  test("reads every srelay option", () => {
    const options = parseCliOptions([
      "-c",
      "/tmp/s.conf",
      "-i",
      "127.0.0.1:0",
      "-i",
      "[::1]:9",
      "-m",
      "50",
      "-o",
      "1.5",
      "-p",
      "/tmp/pid",
      "-u",
      "/tmp/pw",
      "-f",
      "-r",
      "-s",
      "-t",
      "-b",
      "-g",
    ]);
    assert.deepEqual(options.listen, [{ host: "127.0.0.1", port: 0 }, { host: "::1", port: 9 }]);
    assert.deepEqual(options.config, { path: "/tmp/s.conf", explicit: true });
    assert.equal(options.maxSessions, 50);
    assert.equal(options.idleTimeoutMs, 90_000);
    assert.equal(options.pidFile, "/tmp/pid");
    assert.equal(options.passwdFile, "/tmp/pw");
    assert.equal(options.foreground && options.reverseLookup && options.syslog, true);
    assert.equal(options.bindAnyPort && options.sameInterface, true);
  });

  test("-v, -V, -h and -? are recognised", () => {
    assert.equal(parseCliOptions(["-v"]).showVersion, true);
    assert.equal(parseCliOptions(["-V"]).showVersion, true);
    assert.equal(parseCliOptions(["-h"]).showHelp, true);
    assert.equal(parseCliOptions(["-?"]).showHelp, true);
  });

  test("-a takes n, p or both", () => {
    assert.deepEqual(parseCliOptions(["-a", "p"]).authMethods, ["password"]);
    assert.deepEqual(parseCliOptions(["-a", "np"]).authMethods, ["none", "password"]);
    assert.deepEqual(parseCliOptions(["-a", "pn"]).authMethods, ["password", "none"]);
    assert.equal(parseCliOptions(["-a", "p", "-U", "/etc/srelay.users"]).usersFile, "/etc/srelay.users");
  });

  test("long options", () => {
    const options = parseCliOptions(["--log-format", "json", "--log-level", "debug", "--io", "node", "--workers", "2"]);
    assert.equal(options.logFormat, "json");
    assert.equal(options.logLevel, "debug");
    assert.equal(options.io, "node");
    assert.equal(options.workers, 2);
    assert.equal(parseCliOptions(["--check"]).checkConfig, true);
    assert.equal(parseCliOptions(["--fin-wait", "2.5"]).finWaitMs, 2500);
    assert.equal(parseCliOptions([]).finWaitMs, 0);
    assert.equal(parseCliOptions(["-x", "127.0.0.2"]).sourceAddress, "127.0.0.2");
    assert.equal(parseCliOptions(["-J", "127.0.0.3"]).sourceAddress, "127.0.0.3");
  });

  test("BIND and UDP limits: 32 per client and 1,024 in all by default; each option sets one; 0 lifts it", () => {
    assert.deepEqual(parseCliOptions([]).commandLimits, {
      bind: { perClient: 32, total: 1024 },
      udp: { perClient: 32, total: 1024 },
    });
    const options = parseCliOptions([
      "--max-binds",
      "5",
      "--max-binds-per-client",
      "2",
      "--max-udp",
      "0",
      "--max-udp-per-client",
      "7",
    ]);
    assert.deepEqual(options.commandLimits, { bind: { perClient: 2, total: 5 }, udp: { perClient: 7, total: 0 } });
  });

  const mistakes: Array<[string[], RegExp]> = [
    [["-z"], /Unknown option '-z'/],
    [["-i"], /argument missing/],
    [["-o", "ten"], /Invalid value for -o: 'ten' is not a number/],
    [["-o", "-1"], /-o/],
    [["-m", "1.5"], /Invalid value for -m: '1.5' is not a whole number/],
    [["-a", "x"], /Invalid value for -a: -a takes n and p in order of preference \(n, p, np, pn\), not 'x'/],
    [["-a", "nn"], /Invalid value for -a: -a names n twice/],
    [["-i", "1.2.3.4:99999"], /Cannot parse -i '1\.2\.3\.4:99999'/],
    [["--log-format", "xml"], /Invalid value for --log-format: 'xml' \(expected text, json\)/],
    [["--workers", "0"], /Invalid value for --workers: 0 is below 1/],
    [["--max-binds", "-1"], /--max-binds/],
    [["--max-binds-per-client", "two"], /Invalid value for --max-binds-per-client: 'two' is not a whole number/],
    [["--max-udp", "1.5"], /Invalid value for --max-udp: '1\.5' is not a whole number/],
    [["--max-udp-per-client", "+3"], /Invalid value for --max-udp-per-client: '\+3' is not a whole number/],
    [["extra"], /positional|Unexpected argument/i],
    [["-g", "-x", "127.0.0.1"], /give only one/],
    [["--syslog-address", "dev/log"], /Invalid value for --syslog-address: 'dev\/log' .*absolute/],
    [["--syslog-address", "[::1]:0"], /port '0'/],
    [["--syslog-address", "host:99999"], /port '99999'/],
    [["--syslog-address", "[1.2.3.4]"], /not an IPv6 address/],
  ];
  for (const [argv, message] of mistakes) {
    test(`rejects ${argv.join(" ")}`, () => {
      assert.throws(() => parseCliOptions(argv), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
