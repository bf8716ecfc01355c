import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cryptAdapterTests, tool } from "../../tests/helpers/crypt_adapter_tests.ts";
import { loadDenoCrypt } from "./crypt_deno.ts";

const onDeno = "Deno" in globalThis;

// Registered only under Deno: the other runtime cannot load this adapter. A missing
// libcrypt.so.1 fails the test: host accounts need it.
if (onDeno) {
  describe("loadDenoCrypt()", () => {
    cryptAdapterTests(() => loadDenoCrypt(), "nonblocking FFI");

    test("fails with a clear error when there is no libcrypt", async () => {
      await assert.rejects(loadDenoCrypt(["/nonexistent/libcrypt.so.1"]), /no usable libcrypt .*use -U FILE/);
      await assert.rejects(loadDenoCrypt([]), /libcrypt\.so\.1 not found/);
    });

    test("fails with a clear error without --allow-ffi", () => {
      const dir = mkdtempSync(join(tmpdir(), "srelay-crypt-"));
      try {
        const script = join(dir, "probe.ts");
        const module = new URL("./crypt_deno.ts", import.meta.url).href;
        writeFileSync(
          script,
          `import { loadDenoCrypt } from ${JSON.stringify(module)};\n` +
            `loadDenoCrypt().then(() => console.log("loaded"), (error) => console.log(error.message));\n`,
        );
        const deno = (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath();
        const output = tool(deno, ["run", "--no-config", "--allow-read", script]);
        assert.match(output, /^Cannot use the host's accounts: Deno needs --allow-ffi to call crypt\(3\) in libcrypt/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
