import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { NO_AUTHENTICATION } from "../server/negotiate.ts";
import { AuthSetupError, negotiationFor, parseAuthOrder, startAuthentication } from "./auth_setup.ts";
import { loadUsersFile } from "../config/users_file.ts";
import { shaCrypt } from "./sha_crypt.ts";
import type { CryptFunction } from "./verifier.ts";

const noCrypt = () => Promise.reject(new Error("Cannot use the host's accounts: no usable libcrypt"));
const shaOnlyCrypt: CryptFunction = (key, setting) => Promise.resolve(shaCrypt(key, setting));

describe("parseAuthOrder()", () => {
  test("reads n and p in order of preference", () => {
    assert.deepEqual(parseAuthOrder("n"), ["none"]);
    assert.deepEqual(parseAuthOrder("p"), ["password"]);
    assert.deepEqual(parseAuthOrder("np"), ["none", "password"]);
    assert.deepEqual(parseAuthOrder("pn"), ["password", "none"]);
  });
  for (const bad of ["", "x", "nn", "pnp", "N", "n p"]) {
    test(`refuses ${JSON.stringify(bad)} as a usage error`, () => assert.throws(() => parseAuthOrder(bad), RangeError));
  }
});

describe("startAuthentication() and negotiationFor()", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-auth-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("-a n: no authentication, SOCKS4 served, no workers and no host accounts", async () => {
    const backend = await startAuthentication({ order: ["none"], userFile: false, loadCrypt: noCrypt });
    assert.equal(backend.hashes, null);
    assert.equal(backend.hostAccounts, null);
    assert.deepEqual(negotiationFor(backend, null), { socks5: [NO_AUTHENTICATION], socks4: true });
    backend.close();
  });

  test("-a pn -U FILE: password first, then none; each snapshot checks its own read of the file", async () => {
    const file = join(dir, "users");
    writeFileSync(file, execFileSync("htpasswd", ["-nbB", "-C", "4", "alice", "pw"], { encoding: "utf8" }));
    const backend = await startAuthentication({ order: ["password", "none"], userFile: true, loadCrypt: noCrypt });
    try {
      const first = negotiationFor(backend, { path: file, parsed: loadUsersFile(file) });
      assert.deepEqual(first.socks5.map((authenticator) => authenticator.method), [2, 0]);
      assert.equal(first.socks4, true);
      writeFileSync(file, execFileSync("htpasswd", ["-nbB", "-C", "4", "bob", "pw2"], { encoding: "utf8" }));
      const second = negotiationFor(backend, { path: file, parsed: loadUsersFile(file) });
      assert.notEqual(first.socks5[0], second.socks5[0], "a new snapshot gets a new authenticator");
    } finally {
      backend.close();
    }
  });

  test("-a p: SOCKS4 is refused (it cannot carry a password)", async () => {
    const file = join(dir, "users");
    writeFileSync(file, `bob:${shaCrypt("pw", "$6$salt")}\n`);
    const backend = await startAuthentication({ order: ["password"], userFile: true, loadCrypt: noCrypt });
    const negotiation = negotiationFor(backend, { path: file, parsed: loadUsersFile(file) });
    assert.equal(negotiation.socks4, false);
    assert.deepEqual(negotiation.socks5.map((authenticator) => authenticator.method), [2]);
    backend.close();
  });

  test("-a p without -U and no usable libcrypt stops start-up with the reason", async () => {
    await assert.rejects(
      startAuthentication({ order: ["password"], userFile: false, loadCrypt: noCrypt }),
      (error: unknown) => error instanceof AuthSetupError && /no usable libcrypt/.test(error.message),
    );
  });

  test("-a p without -U uses the host's accounts (here from test files)", async () => {
    writeFileSync(join(dir, "passwd"), "carol:x:1000:1000::/:/bin/sh\n");
    writeFileSync(join(dir, "shadow"), `carol:${shaCrypt("pw", "$6$carol")}:19000:0:99999:7:::\n`);
    const backend = await startAuthentication({
      order: ["password"],
      userFile: false,
      loadCrypt: () => Promise.resolve(shaOnlyCrypt),
      hostAccounts: { passwdPath: join(dir, "passwd"), shadowPath: join(dir, "shadow") },
    });
    assert.deepEqual(await backend.hostAccounts?.verify("carol", "pw"), { ok: true, user: "carol" });
    assert.deepEqual(negotiationFor(backend, null).socks5.map((authenticator) => authenticator.method), [2]);
    backend.close();
  });
});
