import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  bcryptHash,
  checkUserHash,
  classifyUserHash,
  defaultDummyUserHash,
  dummyUserHash,
  PASSWD_BCRYPT_COST,
} from "./user_hash.ts";

/** The hash part of `htpasswd -nb [flags] user password` (the format of a user file line). */
function htpasswd(flags: string[], password: string): string {
  const line = execFileSync("htpasswd", ["-nb", ...flags, "user", password], { encoding: "utf8" }).trim();
  return line.slice(line.indexOf(":") + 1);
}

function openssl(flag: string, password: string, salt?: string): string {
  const args = ["passwd", flag, ...(salt === undefined ? [] : ["-salt", salt]), password];
  return execFileSync("openssl", args, { encoding: "utf8" }).trim();
}

function perlCrypt(password: string, setting: string): string {
  return execFileSync("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", password, setting], { encoding: "utf8" });
}

const BCRYPT_2Y = htpasswd(["-B", "-C", "5"], "s3cret pass");
const SHA512 = openssl("-6", "s3cret pass");
const SHA256 = openssl("-5", "s3cret pass");
const SHA512_ROUNDS = perlCrypt("s3cret pass", "$6$rounds=2500$perlsalt");
const BCRYPT_2B = perlCrypt("s3cret pass", "$2b$04$abcdefghijklmnopqrstuu");
const BCRYPT_2A = perlCrypt("s3cret pass", "$2a$04$abcdefghijklmnopqrstuu");

describe("classifyUserHash()", () => {
  test("accepts bcrypt from htpasswd -B and the host's crypt ($2y$, $2b$, $2a$)", () => {
    assert.match(BCRYPT_2Y, /^\$2y\$05\$/);
    assert.deepEqual(classifyUserHash(BCRYPT_2Y), { ok: true, scheme: "bcrypt", cost: 5 });
    assert.deepEqual(classifyUserHash(BCRYPT_2B), { ok: true, scheme: "bcrypt", cost: 4 });
    assert.deepEqual(classifyUserHash(BCRYPT_2A), { ok: true, scheme: "bcrypt", cost: 4 });
  });

  test("accepts SHA-crypt from openssl passwd -5/-6, with and without rounds=", () => {
    assert.deepEqual(classifyUserHash(SHA512), { ok: true, scheme: "sha512-crypt", cost: 5000 });
    assert.deepEqual(classifyUserHash(SHA256), { ok: true, scheme: "sha256-crypt", cost: 5000 });
    assert.deepEqual(classifyUserHash(SHA512_ROUNDS), { ok: true, scheme: "sha512-crypt", cost: 2500 });
  });

  test("warns about slow but valid costs", () => {
    const slow = classifyUserHash(`$2y$15$${"a".repeat(53)}`);
    assert.equal(slow.ok && slow.warning, "bcrypt cost 15 takes seconds of CPU per login");
    const rounds = classifyUserHash(`$6$rounds=2000000$salt$${"a".repeat(86)}`);
    assert.ok(rounds.ok && rounds.warning !== undefined);
  });

  const REFUSED: Array<[string, string, RegExp]> = [
    ["htpasswd -m ($apr1$)", htpasswd(["-m"], "pw"), /unsupported hash scheme \$apr1\$/],
    ["htpasswd -s ({SHA})", htpasswd(["-s"], "pw"), /unsupported hash scheme \{SHA\}/],
    ["openssl passwd -1 ($1$)", openssl("-1", "pw"), /unsupported hash scheme \$1\$ \(MD5-crypt\)/],
    ["yescrypt", perlCrypt("pw", "$y$j9T$abcdefgh$"), /unsupported hash scheme \$y\$ \(yescrypt\)/],
    ["bcrypt $2x$", `$2x$10$${"a".repeat(53)}`, /unsupported hash scheme \$2x\$/],
    ["an unknown $id$", "$9$abc$def", /unknown hash scheme \$9\$/],
    ["plain text", "hunter2", /not a password hash \(plain text\?\)/],
    ["an empty hash", "", /empty password hash/],
    ["a truncated bcrypt hash", BCRYPT_2Y.slice(0, -1), /malformed bcrypt hash/],
    ["bcrypt with a character outside its alphabet", `${BCRYPT_2Y.slice(0, -1)}!`, /malformed bcrypt hash/],
    ["bcrypt cost 03", `$2b$03$${"a".repeat(53)}`, /bcrypt cost 3 is below the minimum 4/],
    ["bcrypt cost 21", `$2b$21$${"a".repeat(53)}`, /bcrypt cost 21 is too slow/],
    [
      "a truncated SHA-512 hash",
      SHA512.slice(0, -1),
      /malformed SHA-512-crypt hash \(the hash part has 85 characters, not 86\)/,
    ],
    ["a SHA-256 hash with a SHA-512 length", `$5$salt$${"a".repeat(86)}`, /not 43/],
    ["rounds=999", `$6$rounds=999$salt$${"a".repeat(86)}`, /rounds=999 is outside 1000\.\.999999999/],
    ["rounds too slow", `$6$rounds=60000000$salt$${"a".repeat(86)}`, /too slow to verify/],
    ["a 17-character salt", `$6$0123456789abcdefg$${"a".repeat(86)}`, /malformed SHA-512-crypt hash/],
    ["a SHA-crypt hash with a blank", `$6$sa lt$${"a".repeat(86)}`, /malformed SHA-512-crypt hash/],
  ];
  for (const [name, hash, message] of REFUSED) {
    test(`refuses ${name}, without repeating the hash`, () => {
      const result = classifyUserHash(hash);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.match(result.message, message);
      if (hash.length > 8) assert.ok(!result.message.includes(hash.slice(8)), result.message);
    });
  }
});

describe("checkUserHash()", () => {
  const HASHES: Array<[string, string]> = [
    ["bcrypt $2y$ (htpasswd)", BCRYPT_2Y],
    ["bcrypt $2b$ (crypt)", BCRYPT_2B],
    ["bcrypt $2a$ (crypt)", BCRYPT_2A],
    ["SHA-512-crypt (openssl)", SHA512],
    ["SHA-256-crypt (openssl)", SHA256],
    ["SHA-512-crypt with rounds= (crypt)", SHA512_ROUNDS],
  ];
  for (const [name, hash] of HASHES) {
    test(`${name}: the right password matches, others do not`, () => {
      assert.equal(checkUserHash("s3cret pass", hash), true);
      assert.equal(checkUserHash("s3cret pas", hash), false);
      assert.equal(checkUserHash("s3cret passs", hash), false);
      assert.equal(checkUserHash("S3cret pass", hash), false);
    });
  }

  test("bcrypt from htpasswd matches UTF-8 passwords byte for byte", () => {
    const password = "gr\u00fc\u00df \u20ac";
    const hash = htpasswd(["-B", "-C", "4"], password);
    assert.equal(checkUserHash(password, hash), true);
    assert.equal(checkUserHash("gr\u00fc\u00df \u20ac ", hash), false);
  });

  test("throws for a hash of another scheme", () => {
    assert.throws(() => checkUserHash("pw", "$1$abc$def"), /neither bcrypt nor SHA-crypt/);
  });
});

describe("dummyUserHash()", () => {
  for (const like of [BCRYPT_2Y, SHA512, SHA256, SHA512_ROUNDS]) {
    test(`keeps the scheme and cost of ${like.slice(0, 16)}..., randomises the rest, never matches`, () => {
      const dummy = dummyUserHash(like);
      const a = classifyUserHash(dummy);
      const b = classifyUserHash(like);
      assert.ok(a.ok && b.ok);
      assert.equal(a.scheme, b.scheme);
      assert.equal(a.cost, b.cost);
      assert.notEqual(dummy, like);
      assert.notEqual(dummyUserHash(like), dummy);
      assert.equal(checkUserHash("s3cret pass", dummy), false);
    });
  }

  test("the default dummy is bcrypt at the cost srelay passwd writes", () => {
    const dummy = classifyUserHash(defaultDummyUserHash());
    assert.deepEqual(dummy, { ok: true, scheme: "bcrypt", cost: PASSWD_BCRYPT_COST });
  });
});

describe("bcryptHash()", () => {
  test("writes $2b$ hashes that htpasswd -v accepts", () => {
    const hash = bcryptHash("pw \u00e9", 4);
    assert.match(hash, /^\$2b\$04\$/);
    assert.equal(checkUserHash("pw \u00e9", hash), true);
    const dir = mkdtempSync(join(tmpdir(), "srelay-bcrypt-"));
    try {
      writeFileSync(join(dir, "users"), `u:${hash}\n`);
      // htpasswd -v exits non-zero (execFileSync throws) when the password does not match.
      execFileSync("htpasswd", ["-vb", join(dir, "users"), "u", "pw \u00e9"], { stdio: "ignore" });
      assert.throws(() => execFileSync("htpasswd", ["-vb", join(dir, "users"), "u", "pw"], { stdio: "ignore" }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
