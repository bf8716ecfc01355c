import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureLogger, installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { parseCliOptions, UsageError } from "../cli/options.ts";
import type { Credentials, PrivilegeOps } from "../runtime/privileges.ts";
import { type Account, becomeUser, dropPrivileges, inaccessible, mismatch, resolveAccount } from "./drop_privileges.ts";

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
srelay:x:998:997::/nonexistent:/usr/sbin/nologin
orphan:x:990:4242::/nonexistent:/usr/sbin/nologin
broken:x:abc:1::/:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
daemon:x:1:
proxy:x:13:
srelay:x:997:
nogroup:x:65534:
`;

function ids(id: number) {
  return { real: id, effective: id, saved: id, fs: id };
}

function credentials(uid: number, gid: number, groups: number[] = []): Credentials {
  return { uid: ids(uid), gid: ids(gid), groups };
}

/** A fake runtime: records the calls; `after` is what `current()` reports once `drop` ran. */
function fakeOps(
  options: { before?: Credentials; after?: Credentials; fail?: string; regain?: boolean } = {},
): PrivilegeOps & { calls: string[] } {
  const calls: string[] = [];
  let state = options.before ?? credentials(0, 0, [0, 4]);
  return {
    calls,
    method: "fake",
    drop(uid, gid) {
      calls.push(`drop(${uid}, ${gid})`);
      if (options.fail !== undefined) throw new Error(options.fail);
      state = options.after ?? credentials(uid, gid);
    },
    current: () => state,
    regainRoot() {
      calls.push("regainRoot");
      return options.regain ?? false;
    },
  };
}

const NOBODY: Account = { user: "nobody", uid: 65534, group: "nogroup", gid: 65534 };

describe("resolveAccount()", () => {
  let dir: string;
  let files: { passwd: string; group: string };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-account-"));
    files = { passwd: join(dir, "passwd"), group: join(dir, "group") };
    writeFileSync(files.passwd, PASSWD);
    writeFileSync(files.group, GROUP);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a user name gives its uid and its primary group", () => {
    assert.deepEqual(resolveAccount("srelay", null, files), { user: "srelay", uid: 998, group: "srelay", gid: 997 });
    assert.deepEqual(resolveAccount("nobody", null, files), NOBODY);
  });

  test("--group replaces the primary group, by name or number", () => {
    assert.deepEqual(resolveAccount("nobody", "proxy", files), { user: "nobody", uid: 65534, group: "proxy", gid: 13 });
    assert.equal(resolveAccount("nobody", "4321", files).gid, 4321);
  });

  test("a primary gid with no /etc/group entry is named by its number", () => {
    assert.deepEqual(resolveAccount("orphan", null, files), { user: "orphan", uid: 990, group: "4242", gid: 4242 });
  });

  test("a number that is no user is a uid, and needs --group", () => {
    assert.deepEqual(resolveAccount("4000", "nogroup", files), {
      user: "4000",
      uid: 4000,
      group: "nogroup",
      gid: 65534,
    });
    assert.throws(
      () => resolveAccount("4000", null, files),
      /uid 4000 has no entry in .*passwd, so it has no group: add --group/,
    );
  });

  test("unknown names and broken entries are errors that say so", () => {
    assert.throws(() => resolveAccount("mallory", null, files), /--user mallory: no such user in .*passwd$/);
    assert.throws(() => resolveAccount("nobody", "wheel", files), /--group wheel: no such group in .*group$/);
    assert.throws(() => resolveAccount("broken", null, files), /has no numeric uid for broken/);
    assert.throws(() => resolveAccount("nobody", null, { ...files, passwd: join(dir, "missing") }), /cannot read/);
  });
});

describe("mismatch()", () => {
  test("null only when every uid and gid is the account's and there are no supplementary groups", () => {
    assert.equal(mismatch(credentials(65534, 65534), NOBODY), null);
    assert.match(mismatch(credentials(65534, 65534, [0]), NOBODY) ?? "", /supplementary groups are 0, not none/);
    const savedRoot = { ...credentials(65534, 65534), uid: { ...ids(65534), saved: 0 } };
    assert.match(
      mismatch(savedRoot, NOBODY) ?? "",
      /uid \(real\/effective\/saved\/fs\) is 65534\/65534\/0\/65534, not 65534/,
    );
    const fsGid = { ...credentials(65534, 65534), gid: { ...ids(65534), fs: 0 } };
    assert.match(mismatch(fsGid, NOBODY) ?? "", /gid .* is 65534\/65534\/65534\/0/);
  });
});

describe("dropPrivileges()", () => {
  const noThreads = "/nonexistent/task";

  test("drops, checks the result, and checks that root cannot come back", () => {
    const ops = fakeOps();
    assert.deepEqual(dropPrivileges(NOBODY, ops, noThreads), { changed: true });
    assert.deepEqual(ops.calls, ["drop(65534, 65534)", "regainRoot"]);
  });

  test("already the account: nothing to change", () => {
    const ops = fakeOps({ before: credentials(65534, 65534) });
    assert.deepEqual(dropPrivileges(NOBODY, ops, noThreads), { changed: false });
    assert.deepEqual(ops.calls, ["regainRoot"]);
  });

  test("a failed call is an error naming the account and the call", () => {
    const ops = fakeOps({ fail: "setgroups([]) failed: EPERM: Operation not permitted" });
    assert.throws(
      () => dropPrivileges(NOBODY, ops, noThreads),
      {
        message:
          "cannot switch to --user nobody (uid 65534, gid 65534): setgroups([]) failed: EPERM: Operation not permitted",
      },
    );
  });

  test("ids that are not all the account's after the drop are an error", () => {
    const ops = fakeOps({ after: { ...credentials(65534, 65534), uid: { ...ids(65534), saved: 0 } } });
    assert.throws(() => dropPrivileges(NOBODY, ops, noThreads), /saved\/fs\) is 65534\/65534\/0\/65534/);
    const groups = fakeOps({ after: credentials(65534, 65534, [4]) });
    assert.throws(() => dropPrivileges(NOBODY, groups, noThreads), /supplementary groups are 4/);
  });

  test("a process that can become root again is an error", () => {
    assert.throws(() => dropPrivileges(NOBODY, fakeOps({ regain: true }), noThreads), /could become root again/);
  });

  test("--user root does not ask to regain root", () => {
    const ops = fakeOps({ before: credentials(0, 0, []) });
    assert.deepEqual(
      dropPrivileges({ user: "root", uid: 0, group: "root", gid: 0 }, ops, noThreads),
      { changed: false },
    );
    assert.deepEqual(ops.calls, []);
  });

  test("every thread in the task directory is checked", () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-task-"));
    try {
      const thread = (tid: string, uid: string, groups: string) => {
        mkdirSync(join(dir, tid));
        writeFileSync(
          join(dir, tid, "status"),
          `Name:\tx\nUid:\t${uid}\nGid:\t65534\t65534\t65534\t65534\nGroups:\t${groups}\n`,
        );
      };
      thread("100", "65534\t65534\t65534\t65534", "");
      assert.deepEqual(dropPrivileges(NOBODY, fakeOps(), dir), { changed: true });
      thread("101", "65534\t65534\t65534\t65534", "0 ");
      assert.throws(() => dropPrivileges(NOBODY, fakeOps(), dir), /thread 101: supplementary groups are 0, not none/);
      rmSync(join(dir, "101"), { recursive: true });
      thread("102", "0\t0\t0\t0", "");
      assert.throws(() => dropPrivileges(NOBODY, fakeOps(), dir), /thread 102: uid .* is 0\/0\/0\/0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("becomeUser()", () => {
  before(installLogCapture);
  after(removeLogCapture);

  test("logs who srelay now runs as, and how", () => {
    const log = captureLogger();
    const options = parseCliOptions(["--user", "nobody", "-c", "/nonexistent/srelay.conf"]);
    assert.equal(becomeUser(NOBODY, fakeOps(), options, log.logger, "/nonexistent/task"), null);
    assert.deepEqual(log.lines(), [
      "Now running as nobody (uid 65534) and group nogroup (gid 65534), no supplementary groups (fake)",
    ]);
  });

  test("a failure is logged and returned for the caller to stop", () => {
    const log = captureLogger();
    const options = parseCliOptions(["--user", "nobody"]);
    const failure = becomeUser(NOBODY, fakeOps({ fail: "setresuid failed" }), options, log.logger, "/nonexistent");
    assert.equal(failure, "cannot switch to --user nobody (uid 65534, gid 65534): setresuid failed");
    assert.deepEqual(log.entries().map((entry) => entry.level), ["error"]);
  });
});

describe("inaccessible()", () => {
  test("missing files are not reported (a reload reports them); readable ones are fine", () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-access-"));
    try {
      writeFileSync(join(dir, "rules"), "pass\n");
      assert.deepEqual(inaccessible([join(dir, "rules"), join(dir, "missing")], [join(dir, "rules")]), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--user and --group on the command line", () => {
  test("are read, and --group needs --user", () => {
    const options = parseCliOptions(["--user", "nobody", "--group", "nogroup"]);
    assert.equal(options.user, "nobody");
    assert.equal(options.group, "nogroup");
    assert.equal(parseCliOptions([]).user, null);
    assert.throws(() => parseCliOptions(["--group", "nogroup"]), UsageError);
  });

  test("host accounts (-a p, np or pn without -U) are refused with --user, saying why", () => {
    for (const order of ["p", "np", "pn"]) {
      assert.throws(
        () => parseCliOptions(["-a", order, "--user", "nobody"]),
        (error: Error) => error instanceof UsageError && /\/etc\/shadow, which only root can read/.test(error.message),
      );
    }
    assert.equal(parseCliOptions(["-a", "p", "-U", "/x", "--user", "nobody"]).user, "nobody");
    assert.equal(parseCliOptions(["-a", "n", "--user", "nobody"]).user, "nobody");
  });
});
