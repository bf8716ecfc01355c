import assert from "node:assert/strict";
import { describe, test } from "node:test";
import process from "node:process";
import { probeDrop, probeSkip } from "./_privileges_probe.ts";

const onDeno = "Deno" in globalThis;
const MODULE = JSON.stringify(new URL("./privileges_deno.ts", import.meta.url).pathname);
const NOBODY = { real: 65534, effective: 65534, saved: 65534, fs: 65534 };

// Registered only under Deno; the drop runs in a child process started as root.
if (onDeno) {
  describe("loadDenoPrivileges()", () => {
    const skip = probeSkip();
    const deno = [process.execPath, "run", "-A", "--no-config"];

    test("drops every uid, gid and supplementary group of every thread, for good", { skip }, () => {
      const probe = probeDrop(deno, `import { loadDenoPrivileges } from ${MODULE};`, "loadDenoPrivileges()");
      assert.equal(probe.error, undefined);
      assert.deepEqual(probe.before.groups, [4, 24]);
      assert.deepEqual(probe.after, { uid: NOBODY, gid: NOBODY, groups: [] });
      assert.equal(probe.regained, false);
      assert.ok(probe.threads.length >= 2, "Deno runs several threads");
      for (const thread of probe.threads) {
        assert.equal(thread, "Uid:\t65534\t65534\t65534\t65534|Gid:\t65534\t65534\t65534\t65534|Groups:", thread);
      }
    });

    test("without CAP_SETUID/CAP_SETGID the drop throws and names the call and errno", { skip }, () => {
      const probe = probeDrop(deno, `import { loadDenoPrivileges } from ${MODULE};`, "loadDenoPrivileges()", true);
      assert.match(probe.error ?? "", /^setgroups\(0, NULL\) failed: Operation not permitted \(errno 1\)$/);
      for (const thread of probe.threads) assert.match(thread, /^Uid:\t0\t0\t0\t0\|/);
    });
  });
}
