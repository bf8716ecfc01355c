import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatListenAddress, parseListenAddress } from "./listen_address.ts";

describe("parseListenAddress()", () => {
  const valid: Array<[string, string | null, number]> = [
    ["192.168.1.2", "192.168.1.2", 1080],
    ["192.168.1.2:9999", "192.168.1.2", 9999],
    ["proxy.example:5432", "proxy.example", 5432],
    [":1234", null, 1234],
    ["[2003:268:1234:4321:250:8bff:fea8:1234]:1234", "2003:268:1234:4321:250:8bff:fea8:1234", 1234],
    ["[::1]", "::1", 1080],
    ["::1", "::1", 1080],
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["localhost", "localhost", 1080],
  ];
  for (const [text, host, port] of valid) {
    test(`reads '${text}'`, () => {
      assert.deepEqual(parseListenAddress(text), { host, port });
    });
  }
  const invalid: Array<[string, RegExp]> = [
    ["127.0.0.1:65536", /port '65536' is not a number from 0 to 65535/],
    ["127.0.0.1:http", /port 'http'/],
    ["[::1:80", /missing '\]'/],
    ["[::1]80", /expected ':port' after '\]'/],
    ["[127.0.0.1]:80", /is not an IPv6 address/],
    [":", /port ''/],
  ];
  for (const [text, message] of invalid) {
    test(`rejects '${text}'`, () => {
      assert.throws(() => parseListenAddress(text), (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, new RegExp(`^Cannot parse -i '${text.replace(/[[\]]/g, "\\$&")}': `));
        assert.match(error.message, message);
        return true;
      });
    });
  }
  test("formats back into -i syntax", () => {
    assert.equal(formatListenAddress({ host: "::1", port: 80 }), "[::1]:80");
    assert.equal(formatListenAddress({ host: null, port: 1080 }), ":1080");
    assert.equal(formatListenAddress({ host: "10.0.0.1", port: 1 }), "10.0.0.1:1");
  });
});
