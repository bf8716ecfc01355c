import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { helpText } from "./help.ts";
import { parseCliOptions, UsageError } from "./options.ts";
import { formatIp } from "../net/address.ts";

/** The lines of the help entry for `option` (its first line and the indented ones after it). */
function entry(option: string): string {
  const lines = helpText().split("\n");
  const start = lines.findIndex((line) => line.startsWith(`  ${option} `) || line === `  ${option}`);
  assert.ok(start >= 0, `help has an entry for ${option}`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => !line.startsWith("                     "));
  return [lines[start], ...rest.slice(0, end < 0 ? rest.length : end)].join("\n");
}

describe("helpText()", () => {
  test("documents every -a order, and each is one the command line accepts", () => {
    const text = entry("-a").replace(/\s+/g, " ");
    for (const order of ["n", "p", "np", "pn"]) {
      assert.match(text, new RegExp(`-a ${order}\\b`));
      assert.doesNotThrow(() => parseCliOptions(["-a", order]), `-a ${order}`);
    }
    assert.match(text, /SOCKS4 and 4a are refused/);
  });

  test("documents --syslog-address: a socket path (default /dev/log) or HOST:PORT over UDP", () => {
    const text = entry("--syslog-address").replace(/\s+/g, " ");
    assert.match(text, /--syslog-address PATH\|HOST:PORT/);
    assert.match(text, /default \/dev\/log/);
    assert.match(text, /HOST:PORT over UDP \(PORT defaults to 514/);
    assert.doesNotMatch(helpText(), /127\.0\.0\.1:514/);
  });

  test("documents --user: what changes, the files NAME must read, and what it excludes", () => {
    const text = entry("--user").replace(/\s+/g, " ");
    assert.match(text, /real, effective and saved uid and gid/);
    assert.match(text, /supplementary groups are cleared/);
    assert.match(text, /exit code 1/);
    assert.match(text, /readable by NAME/);
    assert.match(text, /Not with host accounts \(-a p without -U\)/);
    assert.match(helpText(), /SIGUSR1 +Close and reopen --log-file/);
  });

  test("documents --proxy-protocol-from's default, which is what the command line uses", () => {
    const text = entry("--proxy-protocol-from").replace(/\s+/g, " ");
    assert.match(text, /Default 127\.0\.0\.0\/8,::1\. Implies --proxy-protocol\./);
    const prefixes = (args: string[]) =>
      parseCliOptions(args).proxyProtocol?.from.map((cidr) => `${formatIp(cidr.network)}/${cidr.prefix}`);
    assert.deepEqual(prefixes(["--proxy-protocol"]), ["127.0.0.0/8", "::1/128"]);
    assert.deepEqual(prefixes(["--proxy-protocol-from", "10.0.0.5, [fd00::]/8"]), ["10.0.0.5/32", "fd00::/8"]);
    assert.equal(parseCliOptions([]).proxyProtocol, null);
    for (const bad of ["", "10.0.0.0/33", "proxy.example", "10.0.0.1,"]) {
      assert.throws(() => parseCliOptions(["--proxy-protocol-from", bad]), UsageError, bad);
    }
  });

  test("documents --metrics: /metrics, /healthz 503 while draining, workers; and the forms it takes", () => {
    const text = entry("--metrics").replace(/\s+/g, " ");
    assert.match(text, /--metrics HOST:PORT/);
    assert.match(text, /\/healthz: 200 while accepting, 503 while draining after SIGTERM/);
    assert.match(text, /With --workers the supervisor serves it and adds up all workers/);
    assert.deepEqual(parseCliOptions(["--metrics", "127.0.0.1:9100"]).metrics, { host: "127.0.0.1", port: 9100 });
    assert.deepEqual(parseCliOptions(["--metrics", ":9100"]).metrics, { host: null, port: 9100 });
    assert.deepEqual(parseCliOptions(["--metrics", "[::1]:0"]).metrics, { host: "::1", port: 0 });
    assert.equal(parseCliOptions([]).metrics, null);
    for (const bad of ["127.0.0.1", "::1:9100", "[::1]", "host:99999", "host:x"]) {
      assert.throws(() => parseCliOptions(["--metrics", bad]), /Invalid value for --metrics/, bad);
    }
  });

  test("documents the BIND and UDP limits with the defaults the command line uses", () => {
    const defaults = parseCliOptions([]).commandLimits;
    const bind = entry("--max-binds").replace(/\s+/g, " ");
    assert.match(bind, new RegExp(`waiting for their peer at once, .* \\(default ${defaults.bind.total}\\)`));
    assert.match(bind, /REP 01 \(SOCKS4: CD 5B\) and a log line naming the limit/);
    assert.match(entry("--max-binds-per-client"), new RegExp(`\\(default ${defaults.bind.perClient}\\)`));
    assert.match(
      entry("--max-udp").replace(/\s+/g, " "),
      new RegExp(`UDP associations at once \\(default ${defaults.udp.total}\\)`),
    );
    assert.match(entry("--max-udp-per-client"), new RegExp(`\\(default ${defaults.udp.perClient}\\)`));
  });

  test("every option the help names is one the command line accepts", () => {
    const options = new Set(helpText().match(/(?<=^ {2})-{1,2}[\w-?]+/gm));
    const withValue: Record<string, string> = {
      "-i": ":0",
      "-m": "1",
      "--max-per-client": "4",
      "--max-binds": "4",
      "--max-binds-per-client": "4",
      "--max-udp": "4",
      "--max-udp-per-client": "4",
      "-o": "1",
      "-c": "/x",
      "-u": "/x",
      "-x": "127.0.0.1",
      "-J": "127.0.0.1",
      "-a": "n",
      "-p": "/x",
      "--syslog-address": "/dev/log",
      "--log-file": "/x",
      "--log-format": "text",
      "--log-level": "info",
      "--io": "node",
      "--workers": "2",
      "--grace": "1",
      "--connect-timeout": "1",
      "--handshake-timeout": "1",
      "--bind-timeout": "1",
      "--fin-wait": "1",
      "--hosts-allow": "/x",
      "--hosts-deny": "/x",
      "--rules": "/x",
      "-U": "/x",
      "--metrics": "127.0.0.1:9100",
      "--proxy-protocol-from": "127.0.0.1,10.0.0.0/8",
      "--user": "nobody",
    };
    /** Options that need another option with them. */
    const withOthers: Record<string, string[]> = { "--group": ["--user", "nobody", "--group", "nogroup"] };
    for (const option of options) {
      const value = withValue[option];
      const args = withOthers[option] ?? (value === undefined ? [option] : [option, value]);
      assert.doesNotThrow(() => parseCliOptions(args), option);
    }
  });
});
