import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Backoff } from "../../src/runtime/_backoff.ts";

describe("Backoff", () => {
  test("doubles from 10 ms to at most 1 s", () => {
    const backoff = new Backoff();
    const delays = Array.from({ length: 10 }, () => backoff.next());
    assert.deepEqual(delays, [10, 20, 40, 80, 160, 320, 640, 1_000, 1_000, 1_000]);
  });

  test("starts over after reset()", () => {
    const backoff = new Backoff();
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 10);
    assert.equal(backoff.next(), 20);
  });
});
