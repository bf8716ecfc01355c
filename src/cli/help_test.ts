import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { helpText } from "./help.ts";
import { parseCliOptions } from "./options.ts";

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

  test("every option the help names is one the command line accepts", () => {
    const options = new Set(helpText().match(/(?<=^ {2})-{1,2}[\w-?]+/gm));
    const withValue: Record<string, string> = {
      "-i": ":0",
      "-m": "1",
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
    };
    for (const option of options) {
      const value = withValue[option];
      assert.doesNotThrow(() => parseCliOptions(value === undefined ? [option] : [option, value]), option);
    }
  });
});
