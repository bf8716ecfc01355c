import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { parseShaCryptSetting, shaCrypt } from "./sha_crypt.ts";

/** `openssl passwd -5|-6 -salt SALT PASSWORD`, an implementation independent of ours and of libcrypt. */
function openssl(id: "5" | "6", salt: string, password: string): string {
  return execFileSync("openssl", ["passwd", `-${id}`, "-salt", salt, password], { encoding: "utf8" }).trim();
}

/** crypt(3) of the host's libcrypt, through perl. */
function perlCrypt(password: string, setting: string): string {
  return execFileSync("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", password, setting], { encoding: "utf8" });
}

describe("shaCrypt()", () => {
  // Ulrich Drepper's specification, "Unix crypt using SHA-256 and SHA-512", test vectors.
  const SPEC: Array<[string, string, string]> = [
    [
      "Hello world!",
      "$5$rounds=10000$saltstringsaltstring",
      "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ],
    [
      "This is just a test",
      "$5$rounds=5000$toolongsaltstring",
      "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
    ],
    [
      "the minimum number is still observed",
      "$5$rounds=10$roundstoolow",
      "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ],
    [
      "Hello world!",
      "$6$saltstring",
      "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ],
    [
      "the minimum number is still observed",
      "$6$rounds=10$roundstoolow",
      "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ],
  ];
  for (const [password, setting, expected] of SPEC) {
    test(`specification vector ${setting}`, () => {
      assert.equal(shaCrypt(password, setting), expected);
    });
  }

  test("verifies against its own output when given the full hash as setting", () => {
    const hash = shaCrypt("pw", "$6$abc") as string;
    assert.equal(shaCrypt("pw", hash), hash);
    assert.notEqual(shaCrypt("pW", hash), hash);
  });

  // Lengths around the digest sizes (32, 64) and the block logic of steps 9-10 and 16.
  const LENGTHS = [1, 7, 31, 32, 33, 63, 64, 65, 96, 128, 129, 200];
  for (const id of ["5", "6"] as const) {
    test(`matches openssl passwd -${id} for passwords of ${LENGTHS.join(", ")} bytes`, () => {
      for (const length of LENGTHS) {
        const password = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(8).slice(0, length);
        assert.equal(shaCrypt(password, `$${id}$Zz8.salt/A`), openssl(id, "Zz8.salt/A", password), `length ${length}`);
      }
    });
  }

  test("matches openssl for a UTF-8 password and a 16-character salt", () => {
    const password = "p\u00e4ss w\u00f6rd \u20ac\u{1f511}";
    assert.equal(shaCrypt(password, "$6$0123456789abcdef"), openssl("6", "0123456789abcdef", password));
    assert.equal(shaCrypt(password, "$5$0123456789abcdef"), openssl("5", "0123456789abcdef", password));
  });

  test("matches the host's crypt(3) with rounds=, an empty salt and an empty password", () => {
    const cases: Array<[string, string]> = [
      ["secret", "$6$rounds=1234$abc"],
      ["secret", "$5$rounds=2000$x"],
      ["", "$6$salt"],
      ["x", "$6$$"],
    ];
    for (const [password, setting] of cases) {
      assert.equal(shaCrypt(password, setting), perlCrypt(password, setting), setting);
    }
  });

  test("returns null for settings that are not SHA-crypt", () => {
    for (const setting of ["$1$abc$", "$2b$10$abc", "$y$j9T$abc", "ab", "", "$7$"]) {
      assert.equal(shaCrypt("pw", setting), null, setting);
    }
  });
});

describe("parseShaCryptSetting()", () => {
  test("reads the salt up to the next $ and cuts it to 16 characters", () => {
    assert.deepEqual(parseShaCryptSetting("$6$0123456789abcdefXYZ$hash"), {
      id: "6",
      rounds: 5000,
      explicitRounds: false,
      salt: "0123456789abcdef",
      hash: "hash",
    });
  });

  test("clamps rounds to 1000..999999999 and remembers that they were given", () => {
    assert.equal(parseShaCryptSetting("$5$rounds=1$s")?.rounds, 1000);
    assert.equal(parseShaCryptSetting("$5$rounds=99999999999$s")?.rounds, 999_999_999);
    assert.equal(parseShaCryptSetting("$5$rounds=5000$s")?.explicitRounds, true);
  });
});
