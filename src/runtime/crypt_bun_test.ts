import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import process from "node:process";
import { cryptAdapterTests, tool } from "../../tests/helpers/crypt_adapter_tests.ts";
import { loadBunCrypt } from "./crypt_bun.ts";

const onBun = "Bun" in globalThis;

// Registered only under Bun: the other runtime cannot load this adapter. A missing
// libcrypt.so.1 fails the test: host accounts need it.
if (onBun) {
  describe("loadBunCrypt()", () => {
    cryptAdapterTests(() => loadBunCrypt(), "FFI calls in workers");

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
