import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import process from "node:process";
import { loadBunCrypt } from "./crypt_bun.ts";

const onBun = "Bun" in globalThis;

function tool(program: string, args: string[]): string {
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

// Registered only under Bun: the other runtime cannot load this adapter. A missing
// libcrypt.so.1 fails the test: host accounts need it.
if (onBun) {
  describe("loadBunCrypt()", () => {
    test("computes every scheme of the host's libcrypt like other tools do", async () => {
      const crypt = await loadBunCrypt();
      for (const [name, hash] of vectors()) {
        assert.equal(await crypt("s3cret", hash), hash, name);
        assert.notEqual(await crypt("s3creT", hash), hash, name);
      }
    });

    test("returns null for a setting libcrypt refuses", async () => {
      const crypt = await loadBunCrypt();
      assert.equal(await crypt("pw", "$9$nonsense$"), null);
      assert.equal(await crypt("pw", "$2b$99$abcdefghijklmnopqrstuu"), null);
    });

    test("calls in parallel each get their own answer", async () => {
      const crypt = await loadBunCrypt();
      const hash = tool("openssl", ["passwd", "-6", "-salt", "parallel", "s3cret"]);
      const passwords = Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? "s3cret" : `other${i}`));
      const results = await Promise.all(passwords.map((password) => crypt(password, hash)));
      results.forEach((result, i) => assert.equal(result === hash, passwords[i] === "s3cret", `call ${i}`));
    });

    test("runs off the event loop (FFI calls in workers)", async () => {
      const crypt = await loadBunCrypt();
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

    test("fails with a clear error when there is no libcrypt", async () => {
      await assert.rejects(
        loadBunCrypt({ libraries: ["/nonexistent/libcrypt.so.1"] }),
        /no usable libcrypt .*use -U FILE/,
      );
      await assert.rejects(loadBunCrypt({ libraries: [] }), /libcrypt\.so\.1 not found/);
    });

    test("works inside a bun build --compile binary (the workers need nothing but bun:ffi)", () => {
      const dir = mkdtempSync(join(tmpdir(), "srelay-crypt-"));
      try {
        const script = join(dir, "probe.ts");
        const module = new URL("./crypt_bun.ts", import.meta.url).pathname;
        writeFileSync(
          script,
          `import { loadBunCrypt } from ${JSON.stringify(module)};\n` +
            `const crypt = await loadBunCrypt();\n` +
            `console.log(await crypt("s3cret", "$6$compiled$"));\n`,
        );
        const bun = process.execPath;
        tool(bun, ["build", "--compile", script, "--outfile", join(dir, "probe")]);
        const expected = tool("openssl", ["passwd", "-6", "-salt", "compiled", "s3cret"]);
        assert.equal(tool(join(dir, "probe"), []), expected);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
