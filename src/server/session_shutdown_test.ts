import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SessionShutdown } from "./session_shutdown.ts";

describe("SessionShutdown", () => {
  test("fires each listener once, in order; a removed one and one added after the abort never fire", () => {
    const shutdown = new SessionShutdown();
    const heard: string[] = [];
    const second = () => heard.push("second");
    const gone = () => heard.push("gone");
    shutdown.addEventListener("abort", () => {
      heard.push("first");
      shutdown.removeEventListener("abort", second);
    });
    shutdown.addEventListener("abort", second);
    shutdown.addEventListener("abort", gone);
    shutdown.removeEventListener("abort", gone);
    shutdown.addEventListener("abort", () => heard.push("third"));
    assert.equal(shutdown.aborted, false);
    shutdown.abort();
    shutdown.abort();
    shutdown.addEventListener("abort", () => heard.push("late"));
    assert.deepEqual(heard, ["first", "third"]);
    assert.equal(shutdown.aborted, true);
  });

  test("its signal, made before or after the abort, aborts with the same reason", () => {
    const before = new SessionShutdown();
    const early = before.signal;
    assert.equal(early.aborted, false);
    assert.equal(before.signal, early, "made once");
    const reason = new Error("grace over");
    before.abort(reason);
    assert.equal(early.aborted, true);
    assert.equal(early.reason, reason);
    const after = new SessionShutdown();
    after.abort();
    assert.equal(after.signal.aborted, true);
    assert.equal(after.signal.reason, after.reason);
    assert.equal((after.reason as DOMException).name, "AbortError");
  });

  test("the signal's own listeners (AbortSignal.any) hear the abort", () => {
    const shutdown = new SessionShutdown();
    const combined = AbortSignal.any([shutdown.signal, new AbortController().signal]);
    shutdown.abort();
    assert.equal(combined.aborted, true);
  });
});
