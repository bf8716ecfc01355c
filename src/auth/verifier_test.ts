import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkable, constantTimeEqual, failure } from "./verifier.ts";

describe("verifier helpers", () => {
  test("failure() leaves out an absent detail", () => {
    assert.deepEqual(failure("locked"), { ok: false, reason: "locked" });
    assert.deepEqual(failure("expired", "on 1970-01-01"), { ok: false, reason: "expired", detail: "on 1970-01-01" });
  });

  test("checkable() refuses NUL, which crypt(3) would stop at", () => {
    assert.equal(checkable("pass word \u00e9"), true);
    assert.equal(checkable("pass\0junk"), false);
  });

  test("constantTimeEqual() compares whole strings of any length", () => {
    assert.equal(constantTimeEqual("", ""), true);
    assert.equal(constantTimeEqual("$6$a$b", "$6$a$b"), true);
    assert.equal(constantTimeEqual("$6$a$b", "$6$a$c"), false);
    assert.equal(constantTimeEqual("$6$a$b", "$6$a$b "), false);
    assert.equal(constantTimeEqual("$6$a$b ", "$6$a$b"), false);
    assert.equal(constantTimeEqual("\u0000", ""), false);
  });
});
