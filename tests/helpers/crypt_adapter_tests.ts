/**
 * The tests every crypt(3) adapter (`src/runtime/crypt_bun.ts`,
 * `crypt_deno.ts`) must pass, registered by each adapter's test file under
 * its own runtime, and the `tool` helper they share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import type { CryptFunction } from "../../src/auth/verifier.ts";

/** Runs a program and returns its trimmed stdout. */
export function tool(program: string, args: string[]): string {
  return execFileSync(program, args, { encoding: "utf8" }).trim();
}

/** Hashes made by other tools: perl's crypt (libc), openssl, htpasswd. */
function vectors(): Array<[string, string]> {
  const perl = (setting: string) => tool("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", "s3cret", setting]);
  return [
    ["yescrypt $y$", perl("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$")],
    ["SHA-512-crypt $6$ (openssl)", tool("openssl", ["passwd", "-6", "s3cret"])],
    ["SHA-256-crypt $5$ (openssl)", tool("openssl", ["passwd", "-5", "s3cret"])],
    ["bcrypt $2y$ (htpasswd)", tool("htpasswd", ["-nbB", "-C", "5", "u", "s3cret"]).slice(2)],
    ["bcrypt $2b$", perl("$2b$05$abcdefghijklmnopqrstuu")],
    ["MD5-crypt $1$ (openssl)", tool("openssl", ["passwd", "-1", "s3cret"])],
  ];
}

/**
 * Registers the shared tests for an adapter: every scheme of the host's
 * libcrypt, refused settings, parallel calls, and calls off the event loop
 * (`how` says how the adapter gets there, for the test's name).
 */
export function cryptAdapterTests(load: () => Promise<CryptFunction>, how: string): void {
  test("computes every scheme of the host's libcrypt like other tools do", async () => {
    const crypt = await load();
    for (const [name, hash] of vectors()) {
      assert.equal(await crypt("s3cret", hash), hash, name);
      assert.notEqual(await crypt("s3creT", hash), hash, name);
    }
  });

  test("returns null for a setting libcrypt refuses", async () => {
    const crypt = await load();
    assert.equal(await crypt("pw", "$9$nonsense$"), null);
    assert.equal(await crypt("pw", "$2b$99$abcdefghijklmnopqrstuu"), null);
  });

  test("calls in parallel each get their own answer", async () => {
    const crypt = await load();
    const hash = tool("openssl", ["passwd", "-6", "-salt", "parallel", "s3cret"]);
    const passwords = Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? "s3cret" : `other${i}`));
    const results = await Promise.all(passwords.map((password) => crypt(password, hash)));
    results.forEach((result, i) => assert.equal(result === hash, passwords[i] === "s3cret", `call ${i}`));
  });

  test(`runs off the event loop (${how})`, async () => {
    const crypt = await load();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    try {
      await crypt("s3cret", "$2b$12$abcdefghijklmnopqrstuu"); // about 0.2 s in libcrypt
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    assert.ok(ticks >= Math.min(5, elapsed / 20), `${ticks} timer ticks in ${elapsed.toFixed(0)} ms`);
  });
}
