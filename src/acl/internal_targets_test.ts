import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { describe, test } from "node:test";
import { exposed, internalTargets, isInternalTarget } from "./internal_targets.ts";

describe("internalTargets", () => {
  const internal = internalTargets({ interfaces: () => ["198.51.100.7", "2001:db8::7", "fe80::1%eth0"] });

  const cases: Array<[address: string, expected: boolean]> = [
    ["127.0.0.1", true],
    ["127.255.255.254", true],
    ["::1", true],
    ["[::1]", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", true],
    ["0.1.2.3", true],
    ["::", true],
    ["169.254.169.254", true],
    ["::ffff:169.254.169.254", true],
    ["169.254.0.1", true],
    ["fe80::abcd", true],
    ["febf::1", true],
    ["fd00:ec2::254", true],
    ["198.51.100.7", true],
    ["::ffff:198.51.100.7", true],
    ["2001:db8::7", true],
    ["2001:DB8:0::7", true],
    ["198.51.100.8", false],
    ["2001:db8::8", false],
    ["128.0.0.1", false],
    ["fec0::1", false],
    ["10.0.0.1", false],
    ["192.168.1.1", false],
    ["::127.0.0.1", false],
    ["localhost", false],
    ["", false],
  ];
  for (const [address, expected] of cases) {
    test(`${address || "(empty)"} is ${expected ? "" : "not "}internal`, () =>
      assert.equal(internal(address), expected));
  }

  test("interface addresses are read again at most once a second; a failed read keeps the last list", () => {
    let time = 0;
    let reads = 0;
    let addresses: string[] | Error = ["198.51.100.7"];
    const check = internalTargets({
      now: () => time,
      interfaces: () => {
        reads++;
        if (addresses instanceof Error) throw addresses;
        return addresses;
      },
    });
    assert.equal(reads, 1);
    addresses = ["198.51.100.8"];
    time = 999;
    assert.equal(check("198.51.100.7"), true);
    assert.equal(check("198.51.100.8"), false);
    assert.equal(reads, 1);
    time = 1000;
    assert.equal(check("198.51.100.8"), true);
    assert.equal(check("198.51.100.7"), false);
    assert.equal(reads, 2);
    assert.equal(check("127.0.0.1"), true);
    assert.equal(reads, 2, "fixed ranges need no interface list");
    addresses = new Error("EPERM");
    time = 2000;
    assert.equal(check("198.51.100.8"), true);
    assert.equal(reads, 3);
  });

  test("a failure to read the interfaces at creation is thrown", () => {
    assert.throws(() =>
      internalTargets({
        interfaces: () => {
          throw new Error("PermissionDenied");
        },
      }), /PermissionDenied/);
  });
});

test("isInternalTarget uses this host's interfaces", () => {
  assert.equal(isInternalTarget("127.0.0.1"), true);
  assert.equal(isInternalTarget("192.0.2.1"), false);
  for (const entry of Object.values(networkInterfaces()).flat()) {
    if (entry !== undefined) assert.equal(isInternalTarget(entry.address), true, entry.address);
  }
});

describe("exposed", () => {
  test("loopback-only listeners are not exposed", () => {
    assert.equal(exposed([{ host: "127.0.0.1" }, { host: "127.0.0.2" }, { host: "::1" }], false), false);
    assert.equal(exposed([{ host: "::ffff:127.0.0.1" }], false), false);
    assert.equal(exposed([], false), false);
  });

  test("any other listener is exposed unless authentication is required", () => {
    for (const host of ["0.0.0.0", "::", "192.0.2.1", "fe80::1%eth0", "localhost"]) {
      assert.equal(exposed([{ host: "127.0.0.1" }, { host }], false), true, host);
      assert.equal(exposed([{ host }], true), false, host);
    }
  });
});
