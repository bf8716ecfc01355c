import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ProtocolError } from "../protocol/decoded.ts";
import { NetError, type NetErrorCode } from "../runtime/types.ts";
import { failureForNetError } from "../protocol/reply.ts";
import { hopDialError, HopError, hopHandshakeError } from "./hop_error.ts";

const hop = { name: "fw:1080", protocol: "socks5" };

describe("failureForNetError()", () => {
  const cases: Array<[NetErrorCode, string]> = [
    ["refused", "connection_refused"],
    ["host_unreachable", "host_unreachable"],
    ["net_unreachable", "network_unreachable"],
    ["timeout", "ttl_expired"],
    ["not_found", "host_unreachable"],
    ["permission_denied", "not_allowed"],
    ["reset", "general_failure"],
    ["closed", "general_failure"],
    ["other", "general_failure"],
  ];
  for (const [code, reason] of cases) {
    test(`maps ${code} to ${reason}`, () => {
      assert.equal(failureForNetError(new NetError(code, "x")), reason);
    });
  }
});

describe("hopDialError()", () => {
  test("keeps the network reason and names the hop", () => {
    const cause = new NetError("refused", "connect ECONNREFUSED 10.0.0.1:1080");
    const error = hopDialError(hop, cause);
    assert.ok(error instanceof HopError);
    assert.equal(error.hop, "fw:1080");
    assert.equal(error.reason, "connection_refused");
    assert.equal(error.message, "Next hop fw:1080 (socks5) is unreachable: connect ECONNREFUSED 10.0.0.1:1080");
    assert.equal(error.cause, cause);
  });

  test("returns a HopError unchanged", () => {
    const original = new HopError("a:1", "not_allowed", "x");
    assert.equal(hopDialError(hop, original), original);
  });
});

describe("hopHandshakeError()", () => {
  test("maps garbage to general_failure", () => {
    const error = hopHandshakeError(hop, "the SOCKS5 greeting", new ProtocolError("bad version"));
    assert.equal(error.reason, "general_failure");
    assert.equal(
      error.message,
      "Next hop fw:1080 (socks5) sent a malformed answer to the SOCKS5 greeting: bad version",
    );
  });

  test("maps a timeout to ttl_expired", () => {
    const error = hopHandshakeError(hop, "the SOCKS5 request", new NetError("timeout", "t"));
    assert.equal(error.reason, "ttl_expired");
    assert.equal(error.message, "Next hop fw:1080 (socks5) did not answer in time during the SOCKS5 request");
  });

  test("maps a close to general_failure", () => {
    const error = hopHandshakeError(hop, "the SOCKS5 request", new NetError("closed", "c"));
    assert.equal(error.reason, "general_failure");
    assert.match(error.message, /closed the connection during the SOCKS5 request$/);
  });
});
