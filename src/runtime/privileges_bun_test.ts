import assert from "node:assert/strict";
import { describe, test } from "node:test";
import process from "node:process";
import { probeDrop, probeSkip } from "./_privileges_probe.ts";

const onBun = "Bun" in globalThis;
const MODULE = JSON.stringify(new URL("./privileges_bun.ts", import.meta.url).pathname);
const NOBODY = { real: 65534, effective: 65534, saved: 65534, fs: 65534 };

// Registered only under Bun; the drop runs in a child process started as root.
if (onBun) {
  describe("bunPrivileges", () => {
    const skip = probeSkip();

    test("drops every uid, gid and supplementary group of every thread, for good", { skip }, () => {
      const probe = probeDrop([process.execPath], `import { bunPrivileges } from ${MODULE};`, "bunPrivileges");
      assert.equal(probe.error, undefined);
      assert.deepEqual(probe.before.groups, [4, 24]);
      assert.deepEqual(probe.after, { uid: NOBODY, gid: NOBODY, groups: [] });
      assert.equal(probe.regained, false);
      assert.ok(probe.threads.length >= 1);
      for (const thread of probe.threads) {
        assert.equal(thread, "Uid:\t65534\t65534\t65534\t65534|Gid:\t65534\t65534\t65534\t65534|Groups:", thread);
      }
    });

    test("without CAP_SETUID/CAP_SETGID the drop throws and names the call", { skip }, () => {
      const probe = probeDrop([process.execPath], `import { bunPrivileges } from ${MODULE};`, "bunPrivileges", true);
      assert.match(probe.error ?? "", /^setgroups\(\[\]\) failed: EPERM: Operation not permitted$/);
      for (const thread of probe.threads) assert.match(thread, /^Uid:\t0\t0\t0\t0\|/);
    });
  });
}
