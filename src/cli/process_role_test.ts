import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DAEMON_CHILD_ENV, processRole, WORKER_ENV, WORKER_LISTEN_ENV } from "./process_role.ts";
import { BOUND_PREFIX, boundLine } from "./ready_lines.ts";

describe("processRole()", () => {
  test("a process the user started reports to nobody", () => {
    assert.deepEqual(processRole({}), {
      backgroundChild: false,
      worker: 0,
      assignedListen: null,
      reportsToParent: false,
    });
  });

  test("the background child reports to its parent", () => {
    const role = processRole({ [DAEMON_CHILD_ENV]: "1" });
    assert.equal(role.backgroundChild, true);
    assert.equal(role.reportsToParent, true);
    assert.equal(role.worker, 0);
  });

  test("worker 1 binds its -i options; later workers get the addresses as data", () => {
    assert.equal(processRole({ [WORKER_ENV]: "1" }).assignedListen, null);
    const role = processRole({
      [WORKER_ENV]: "3",
      [WORKER_LISTEN_ENV]: JSON.stringify([{ host: "127.0.0.1", port: 40001 }, { host: "::1", port: 40002 }]),
    });
    assert.equal(role.worker, 3);
    assert.deepEqual(role.assignedListen, [{ host: "127.0.0.1", port: 40001 }, { host: "::1", port: 40002 }]);
  });

  test("a malformed address list is an error, not a silent fallback to -i", () => {
    assert.throws(() => processRole({ [WORKER_ENV]: "2", [WORKER_LISTEN_ENV]: "127.0.0.1:1080" }), SyntaxError);
    assert.throws(
      () => processRole({ [WORKER_ENV]: "2", [WORKER_LISTEN_ENV]: '[{"host":"::1"}]' }),
      /not \{host, port\}/,
    );
  });

  test("what a worker reports with boundLine() is what the next worker is assigned", () => {
    const line = boundLine([{ host: "::1", port: 1080, family: 6 } as { host: string; port: number }]);
    assert.ok(line.startsWith(BOUND_PREFIX));
    const role = processRole({ [WORKER_ENV]: "2", [WORKER_LISTEN_ENV]: line.slice(BOUND_PREFIX.length) });
    assert.deepEqual(role.assignedListen, [{ host: "::1", port: 1080 }]);
  });
});
