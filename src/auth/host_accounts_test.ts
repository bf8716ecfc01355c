import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import { libcryptPaths } from "../runtime/_libcrypt_paths.ts";
import { expiryProblem, HostAccountVerifier, parsePasswd, parseShadow } from "./host_accounts.ts";
import { shaCrypt } from "./sha_crypt.ts";
import type { CryptFunction } from "./verifier.ts";

const hasLibcrypt = libcryptPaths().length > 0;
const DAY = 86_400_000;
const TODAY = 20_000; // 2024-10-04

/** The runtime's own crypt(3) loader, as the entry point passes it. */
async function loadCrypt(): Promise<CryptFunction> {
  if ("Deno" in globalThis) return await (await import("../runtime/crypt_deno.ts")).loadDenoCrypt();
  return await (await import("../runtime/crypt_bun.ts")).loadBunCrypt();
}

function tool(program: string, args: string[], input?: string): string {
  return execFileSync(program, args, { encoding: "utf8", input }).trim();
}

function perlCrypt(password: string, setting: string): string {
  return tool("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", password, setting]);
}

/** Wraps a crypt function, recording each setting it was called with. */
function counting(crypt: CryptFunction): CryptFunction & { settings: string[] } {
  const settings: string[] = [];
  const wrapped = (key: string, setting: string) => {
    settings.push(setting);
    return crypt(key, setting);
  };
  return Object.assign(wrapped, { settings });
}

/** crypt(3) in TypeScript for SHA-crypt only: enough for tests that need no libcrypt. */
const shaOnlyCrypt: CryptFunction = (key, setting) => Promise.resolve(shaCrypt(key, setting));

describe("parsePasswd() / parseShadow()", () => {
  test("read the fields srelay needs and skip NIS and malformed lines", () => {
    const passwd = parsePasswd("root:x:0:0:root:/root:/bin/bash\n+nis::::::\nold:abc:1:1::/:/bin/sh\nbad\n");
    assert.deepEqual([...passwd], [["root", "x"], ["old", "abc"]]);
    const shadow = parseShadow("root:$6$s$h:19000:0:99999:7:::\nbob:!:19000::::5:20001:\n-x:y\n");
    assert.deepEqual(shadow.get("root"), {
      hash: "$6$s$h",
      lastChange: 19000,
      maxAge: 99999,
      inactive: -1,
      expire: -1,
    });
    assert.deepEqual(shadow.get("bob"), { hash: "!", lastChange: 19000, maxAge: -1, inactive: 5, expire: 20001 });
    assert.equal(shadow.size, 2);
  });
});

describe("expiryProblem()", () => {
  const base = { hash: "$6$s$h", lastChange: 19_000, maxAge: -1, inactive: -1, expire: -1 };
  test("an expiry date that has come expires the account (as pam_unix: today >= expire)", () => {
    assert.equal(expiryProblem({ ...base, expire: TODAY + 1 }, TODAY), null);
    assert.equal(expiryProblem({ ...base, expire: TODAY }, TODAY), "the account expired on 2024-10-04");
    assert.equal(expiryProblem({ ...base, expire: 0 }, TODAY), "the account expired on 1970-01-01");
  });
  test("a password past its maximum age and inactive period expires the account", () => {
    const aged = { ...base, lastChange: TODAY - 100, maxAge: 90, inactive: 10 };
    assert.equal(expiryProblem(aged, TODAY), null);
    assert.match(expiryProblem(aged, TODAY + 1) ?? "", /the password expired and its inactive period ended/);
    assert.equal(expiryProblem({ ...aged, inactive: -1 }, TODAY + 1000), null, "no inactive period: never");
    assert.equal(expiryProblem({ ...aged, lastChange: 0 }, TODAY + 1000), null, "0: must change at next login");
  });
});

describe("HostAccountVerifier with its own passwd and shadow files", () => {
  let dir: string;
  let passwdPath: string;
  let shadowPath: string;
  const sha512 = tool("openssl", ["passwd", "-6", "open sesame"]);
  const passwd = [
    "root:x:0:0:root:/root:/bin/bash",
    "alice:x:1000:1000::/home/alice:/bin/sh",
    "locked:x:1001:1001::/:/bin/sh",
    "star:x:1002:1002::/:/bin/sh",
    "empty:x:1003:1003::/:/bin/sh",
    "expired:x:1004:1004::/:/bin/sh",
    "inactive:x:1005:1005::/:/bin/sh",
    "noshadow:x:1006:1006::/:/bin/sh",
    `legacy:${shaCrypt("open sesame", "$6$legacy")}:1007:1007::/:/bin/sh`,
  ].join("\n");
  const shadowLines = (aliceHash: string) =>
    [
      `root:*:19000:0:99999:7:::`,
      `alice:${aliceHash}:19000:0:99999:7:::`,
      `locked:!${sha512}:19000:0:99999:7:::`,
      `star:*:19000:0:99999:7:::`,
      `empty::19000:0:99999:7:::`,
      `expired:${sha512}:19000:0:99999:7::0:`,
      `inactive:${sha512}:${TODAY - 200}:0:90:7:30::`,
    ].join("\n") + "\n";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-host-"));
    passwdPath = join(dir, "passwd");
    shadowPath = join(dir, "shadow");
    writeFileSync(passwdPath, `${passwd}\n`);
    writeFileSync(shadowPath, shadowLines(sha512));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const open = (crypt: CryptFunction, extra: object = {}) =>
    HostAccountVerifier.open({ crypt, passwdPath, shadowPath, now: () => TODAY * DAY + 3_600_000, ...extra });

  test("accepts the right password and refuses a wrong one", async () => {
    const verifier = await open(shaOnlyCrypt);
    assert.deepEqual(await verifier.verify("alice", "open sesame"), { ok: true, user: "alice" });
    assert.deepEqual(await verifier.verify("alice", "open sesame!"), { ok: false, reason: "wrong_password" });
    assert.deepEqual(await verifier.verify("legacy", "open sesame"), { ok: true, user: "legacy" }, "hash in passwd");
  });

  test("unknown users are checked against a dummy of the common scheme, like a wrong password", async () => {
    const crypt = counting(shaOnlyCrypt);
    const verifier = await open(crypt);
    crypt.settings.length = 0;
    assert.deepEqual(await verifier.verify("alice", "guess"), { ok: false, reason: "wrong_password" });
    assert.deepEqual(await verifier.verify("mallory", "guess"), { ok: false, reason: "unknown_user" });
    assert.deepEqual(await verifier.verify("alic", "open sesame"), { ok: false, reason: "unknown_user" });
    assert.equal(crypt.settings.length, 3, "one crypt(3) call per attempt, known user or not");
    assert.match(crypt.settings[1] ?? "", /^\$6\$/);
    assert.equal(crypt.settings[2], crypt.settings[1]);
  });

  test("locked, starred, empty and shadowless accounts are refused after a dummy check", async () => {
    const crypt = counting(shaOnlyCrypt);
    const verifier = await open(crypt);
    crypt.settings.length = 0;
    assert.deepEqual(await verifier.verify("locked", "open sesame"), {
      ok: false,
      reason: "locked",
      detail: "the hash starts with !",
    });
    assert.deepEqual(await verifier.verify("star", "x"), {
      ok: false,
      reason: "locked",
      detail: "the hash starts with *",
    });
    assert.deepEqual(await verifier.verify("root", "x"), {
      ok: false,
      reason: "locked",
      detail: "the hash starts with *",
    });
    assert.deepEqual(await verifier.verify("empty", ""), { ok: false, reason: "locked", detail: "no password set" });
    assert.deepEqual(await verifier.verify("noshadow", "x"), {
      ok: false,
      reason: "locked",
      detail: "no shadow entry",
    });
    assert.equal(crypt.settings.length, 5);
    assert.ok(crypt.settings.every((setting) => !setting.startsWith("!")));
  });

  test("expired accounts are refused even with the right password (srelay lets them in)", async () => {
    const verifier = await open(shaOnlyCrypt);
    assert.deepEqual(await verifier.verify("expired", "open sesame"), {
      ok: false,
      reason: "expired",
      detail: "the account expired on 1970-01-01",
    });
    assert.deepEqual(await verifier.verify("inactive", "open sesame"), {
      ok: false,
      reason: "expired",
      detail: "the password expired and its inactive period ended on 2024-07-16",
    });
    assert.deepEqual(await verifier.verify("expired", "wrong"), { ok: false, reason: "wrong_password" });
  });

  test("a password with NUL is refused (crypt would stop at it)", async () => {
    const verifier = await open(shaOnlyCrypt);
    assert.equal((await verifier.verify("alice", "open sesame\0x")).ok, false);
  });

  test("changes to the files take effect at the next login", async () => {
    const verifier = await open(shaOnlyCrypt);
    assert.equal((await verifier.verify("alice", "open sesame")).ok, true);
    writeFileSync(shadowPath, shadowLines(`!${sha512}`));
    assert.deepEqual(await verifier.verify("alice", "open sesame"), {
      ok: false,
      reason: "locked",
      detail: "the hash starts with !",
    });
    writeFileSync(shadowPath, shadowLines(sha512));
    assert.equal((await verifier.verify("alice", "open sesame")).ok, true);
  });

  test("a file that disappears later makes logins unavailable, not accepted", async () => {
    const verifier = await open(shaOnlyCrypt);
    const moved = `${shadowPath}.moved`;
    execFileSync("mv", [shadowPath, moved]);
    try {
      const result = await verifier.verify("alice", "open sesame");
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, "unavailable");
    } finally {
      execFileSync("mv", [moved, shadowPath]);
    }
  });

  test("a full crypt queue answers busy at once", async () => {
    let release!: () => void;
    let entered!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const slow: CryptFunction = async (key, setting) => {
      if (key === "hold") {
        entered();
        await gate;
      }
      return shaCrypt(key, setting);
    };
    const verifier = await open(slow, { concurrency: 1, maxQueued: 0 });
    const held = verifier.verify("alice", "hold");
    await inside;
    assert.deepEqual(await verifier.verify("alice", "open sesame"), { ok: false, reason: "busy" });
    assert.deepEqual(await verifier.verify("nobody", "open sesame"), { ok: false, reason: "busy" });
    release();
    assert.deepEqual(await held, { ok: false, reason: "wrong_password" });
  });

  test("open() fails clearly when a file cannot be read or crypt(3) is broken", async () => {
    await assert.rejects(
      HostAccountVerifier.open({ crypt: shaOnlyCrypt, passwdPath, shadowPath: join(dir, "missing") }),
      /^Error: Cannot read the shadow password file .*missing: no such file \(this system keeps no host accounts there; use -U FILE\)/,
    );
    await assert.rejects(
      HostAccountVerifier.open({ crypt: () => Promise.resolve("*0"), passwdPath, shadowPath }),
      /crypt\(3\) gave a wrong SHA-512-crypt hash in its self-test/,
    );
    await assert.rejects(
      HostAccountVerifier.open({ crypt: () => Promise.reject(new Error("dead")), passwdPath, shadowPath }),
      /crypt\(3\) failed \(dead\)/,
    );
  });

  test("with the runtime's libcrypt: yescrypt, SHA-crypt, bcrypt and MD5 accounts", {
    skip: hasLibcrypt ? false : "no libcrypt.so.1",
  }, async () => {
    const schemes = [
      ["yes", perlCrypt("pw yes", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"), "pw yes"],
      ["sha", tool("openssl", ["passwd", "-6", "pw sha"]), "pw sha"],
      ["bcr", tool("htpasswd", ["-nbB", "-C", "5", "u", "pw bcr"]).slice(2), "pw bcr"],
      ["md5", tool("openssl", ["passwd", "-1", "pw md5"]), "pw md5"],
    ];
    const local = mkdtempSync(join(tmpdir(), "srelay-host-"));
    try {
      writeFileSync(join(local, "passwd"), schemes.map(([user]) => `${user}:x:1:1::/:/bin/sh\n`).join(""));
      writeFileSync(
        join(local, "shadow"),
        schemes.map(([user, hash]) => `${user}:${hash}:19000:0:99999:7:::\n`).join(""),
      );
      const verifier = await HostAccountVerifier.open({
        crypt: await loadCrypt(),
        passwdPath: join(local, "passwd"),
        shadowPath: join(local, "shadow"),
      });
      for (const [user, , password] of schemes) {
        assert.deepEqual(await verifier.verify(user!, password!), { ok: true, user }, user);
        assert.deepEqual(await verifier.verify(user!, `${password}x`), { ok: false, reason: "wrong_password" }, user);
      }
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });
});

const isRoot = process.getuid?.() === 0;
const canManageUsers = isRoot && hasLibcrypt &&
  ["useradd", "chpasswd", "passwd", "chage", "userdel"].every((program) => {
    try {
      execFileSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });

describe("HostAccountVerifier with a real account (root only)", {
  skip: canManageUsers ? false : "needs root, libcrypt and useradd/chpasswd/passwd/chage/userdel",
}, () => {
  const user = `srelaytest${Math.floor(Math.random() * 1e6)}`;
  let verifier: HostAccountVerifier;
  before(async () => {
    execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", user]);
    verifier = await HostAccountVerifier.open({ crypt: await loadCrypt() });
  });
  after(() => {
    try {
      execFileSync("userdel", ["-r", user], { stdio: "ignore" });
    } catch {
      execFileSync("userdel", [user], { stdio: "ignore" });
    }
  });

  test("a fresh account without a password cannot log in", async () => {
    const result = await verifier.verify(user, "anything");
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, "locked");
  });

  for (const method of ["SHA512", "YESCRYPT"]) {
    test(`chpasswd -c ${method}: the password works, a wrong one does not`, async () => {
      tool("chpasswd", ["-c", method], `${user}:Corr3ct horse\n`);
      assert.deepEqual(await verifier.verify(user, "Corr3ct horse"), { ok: true, user });
      assert.deepEqual(await verifier.verify(user, "corr3ct horse"), { ok: false, reason: "wrong_password" });
    });
  }

  test("passwd -l locks it and passwd -u unlocks it", async () => {
    tool("passwd", ["-l", user]);
    assert.deepEqual(await verifier.verify(user, "Corr3ct horse"), {
      ok: false,
      reason: "locked",
      detail: "the hash starts with !",
    });
    tool("passwd", ["-u", user]);
    assert.deepEqual(await verifier.verify(user, "Corr3ct horse"), { ok: true, user });
  });

  test("chage -E 0 expires it and chage -E -1 lifts the expiry", async () => {
    tool("chage", ["-E", "0", user]);
    assert.deepEqual(await verifier.verify(user, "Corr3ct horse"), {
      ok: false,
      reason: "expired",
      detail: "the account expired on 1970-01-01",
    });
    tool("chage", ["-E", "-1", user]);
    assert.deepEqual(await verifier.verify(user, "Corr3ct horse"), { ok: true, user });
  });
});
