import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import { describe, test } from "node:test";
import { parseProcStatus, procCredentials } from "./privileges.ts";

const STATUS = `Name:\tsrelay
Umask:\t0022
State:\tS (sleeping)
Uid:\t0\t65534\t1000\t65534
Gid:\t4\t65534\t65534\t7
Groups:\t4 24 27 
`;

describe("parseProcStatus()", () => {
  test("reads real, effective, saved and filesystem ids and the supplementary groups", () => {
    assert.deepEqual(parseProcStatus(STATUS), {
      uid: { real: 0, effective: 65534, saved: 1000, fs: 65534 },
      gid: { real: 4, effective: 65534, saved: 65534, fs: 7 },
      groups: [4, 24, 27],
    });
  });

  test("an empty Groups line is no supplementary groups", () => {
    assert.deepEqual(parseProcStatus(STATUS.replace(/^Groups:.*$/m, "Groups:\t"))?.groups, []);
  });

  test("null when a line is missing or short", () => {
    assert.equal(parseProcStatus(STATUS.replace(/^Groups:.*\n/m, "")), null);
    assert.equal(parseProcStatus(STATUS.replace(/^Uid:.*$/m, "Uid:\t0\t0")), null);
  });
});

describe("procCredentials()", () => {
  test(
    "matches node:process on Linux, and is null where there is no /proc",
    { skip: process.getuid === undefined },
    () => {
      const credentials = procCredentials();
      if (!existsSync("/proc/self/status")) {
        assert.equal(credentials, null);
        return;
      }
      assert.equal(credentials?.uid.real, process.getuid!());
      assert.equal(credentials?.uid.effective, process.geteuid!());
      assert.equal(credentials?.gid.effective, process.getegid!());
    },
  );

  test("is null for a file that does not exist", () => {
    assert.equal(procCredentials("/nonexistent/status"), null);
  });
});
