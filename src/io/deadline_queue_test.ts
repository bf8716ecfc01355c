import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineQueue } from "./deadline_queue.ts";

/** Resolves once `expired` holds `count` names, or after 2 s (the test then fails on the names). */
async function waitFor(expired: string[], count: number): Promise<void> {
  for (let i = 0; i < 400 && expired.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("DeadlineQueue", () => {
  test("entries expire in the order they were added; removed ones never do", async () => {
    const queue = new DeadlineQueue(20);
    const expired: string[] = [];
    const entry = (name: string) => ({ expire: () => expired.push(name) });
    const a = entry("a");
    const b = entry("b");
    const c = entry("c");
    queue.add(a);
    queue.add(b);
    await new Promise((resolve) => setTimeout(resolve, 5));
    queue.add(c);
    assert.equal(queue.delete(b), true);
    assert.equal(queue.size, 2);
    await waitFor(expired, 2);
    assert.deepEqual(expired, ["a", "c"]);
    assert.equal(queue.size, 0);
    assert.equal(queue.delete(a), false, "an expired entry has no deadline left");
  });

  test("an entry added once the queue emptied gets its full duration, not the old timer's rest", async () => {
    const queue = new DeadlineQueue(40);
    const expired: string[] = [];
    const first = { expire: () => expired.push("first") };
    queue.add(first);
    queue.delete(first);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const startedAt = performance.now();
    let expiredAfter = 0;
    queue.add({
      expire: () => {
        expiredAfter = performance.now() - startedAt;
        expired.push("second");
      },
    });
    await waitFor(expired, 1);
    assert.deepEqual(expired, ["second"]);
    assert.ok(expiredAfter >= 39, `expired after ${expiredAfter} ms, before its 40 ms`);
  });

  test("an entry that expires may add another; it waits its own duration", async () => {
    const queue = new DeadlineQueue(10);
    const expired: string[] = [];
    queue.add({
      expire: () => {
        expired.push("one");
        queue.add({ expire: () => expired.push("two") });
      },
    });
    await waitFor(expired, 2);
    assert.deepEqual(expired, ["one", "two"]);
  });
});
