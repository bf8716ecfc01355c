import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { BoundedQueue, defaultHashWorkerUrl, HashWorkerPool } from "./hash_queue.ts";
import { bcryptHash } from "./user_hash.ts";

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

describe("BoundedQueue", () => {
  test("runs at most `concurrency` jobs, queues `maxQueued` more in order, refuses the rest at once", async () => {
    const queue = new BoundedQueue(2, 1);
    const gates = [deferred<number>(), deferred<number>(), deferred<number>()];
    const started: number[] = [];
    const job = (index: number) => () => {
      started.push(index);
      return gates[index]!.promise;
    };
    const a = queue.run(job(0));
    const b = queue.run(job(1));
    const c = queue.run(job(2));
    assert.equal(queue.run(() => Promise.resolve(9)), undefined);
    assert.deepEqual(started, [0, 1]);
    assert.deepEqual([queue.running, queue.queued], [2, 1]);
    gates[1]!.resolve(1);
    assert.equal(await b, 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]!.reject(new Error("boom"));
    await assert.rejects(a as Promise<number>, /boom/);
    gates[2]!.resolve(2);
    assert.equal(await c, 2);
    assert.deepEqual([queue.running, queue.queued], [0, 0]);
  });

  test("a job that throws synchronously frees its slot", async () => {
    const queue = new BoundedQueue(1, 0);
    await assert.rejects(
      queue.run(() => {
        throw new Error("sync");
      }) as Promise<never>,
      /sync/,
    );
    assert.equal(await queue.run(() => Promise.resolve(1)), 1);
  });

  test("rejects nonsense sizes", () => {
    assert.throws(() => new BoundedQueue(0, 1), RangeError);
    assert.throws(() => new BoundedQueue(1, -1), RangeError);
  });
});

describe("defaultHashWorkerUrl()", () => {
  test("is hash_worker.ts beside the module when running from source", () => {
    assert.equal(defaultHashWorkerUrl("file:///src/auth/hash_queue.ts"), "file:///src/auth/hash_worker.ts");
  });

  test("is the bundled auth/hash_worker.js inside a bun build --compile binary", () => {
    assert.equal(defaultHashWorkerUrl("file:///$bunfs/root/srelay-linux-x64"), "/$bunfs/root/auth/hash_worker.js");
    assert.equal(defaultHashWorkerUrl("file:///B:/~BUN/root/srelay.exe"), "B:/~BUN/root/auth/hash_worker.js");
  });
});

describe("HashWorkerPool", () => {
  const htpasswd = execFileSync("htpasswd", ["-nbB", "-C", "5", "u", "right"], { encoding: "utf8" }).trim().slice(2);
  const sha512 = execFileSync("openssl", ["passwd", "-6", "right"], { encoding: "utf8" }).trim();
  let pool: HashWorkerPool;
  before(async () => {
    pool = await HashWorkerPool.start({ threads: 2, maxQueued: 4 });
  });
  after(() => pool.close());

  test("checks bcrypt (htpasswd) and SHA-crypt (openssl) hashes in workers", async () => {
    assert.equal(pool.threads, 2);
    assert.deepEqual(
      await Promise.all([
        pool.check("right", htpasswd),
        pool.check("wrong", htpasswd),
        pool.check("right", sha512),
        pool.check("wrong", sha512),
      ]),
      ["match", "mismatch", "match", "mismatch"],
    );
  });

  test("concurrent checks each get their own answer", async () => {
    const passwords = ["right", "wrong", "right", "x", "right", "y"];
    const hashes = passwords.map((_, i) => (i % 2 === 0 ? sha512 : htpasswd));
    const answers = await Promise.all(passwords.map((password, i) => pool.check(password, hashes[i]!)));
    assert.deepEqual(answers, ["match", "mismatch", "match", "mismatch", "match", "mismatch"]);
  });

  test("a hash of an unknown scheme is an error, and the worker goes on", async () => {
    assert.equal(await pool.check("x", "$1$abc$def"), "error");
    assert.equal(await pool.check("right", sha512), "match");
  });

  test("the event loop keeps running while a slow hash is checked", async () => {
    const slow = bcryptHash("right", 12); // about 0.2 s of CPU in JavaScript
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    try {
      assert.equal(await pool.check("right", slow), "match");
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    // A check on the event loop would leave no tick at all; allow for a busy machine.
    assert.ok(ticks >= Math.min(5, elapsed / 20), `${ticks} timer ticks in ${elapsed.toFixed(0)} ms`);
  });

  test("when every worker is busy and the queue is full, checks are answered busy at once", async () => {
    const small = await HashWorkerPool.start({ threads: 1, maxQueued: 1 });
    try {
      const slow = bcryptHash("right", 10);
      const first = small.check("right", slow);
      const second = small.check("wrong", slow);
      const started = performance.now();
      assert.equal(await small.check("right", slow), "busy");
      assert.ok(performance.now() - started < 50);
      assert.deepEqual(small.load, { running: 1, queued: 1 });
      assert.deepEqual(await Promise.all([first, second]), ["match", "mismatch"]);
      assert.deepEqual(small.load, { running: 0, queued: 0 });
    } finally {
      small.close();
    }
  });

  test("start() fails with a clear error when the worker module cannot be loaded", async () => {
    await assert.rejects(
      HashWorkerPool.start({
        threads: 1,
        workerUrl: "file:///nonexistent/srelay/hash_worker.ts",
        startTimeoutMs: 5000,
      }),
      /Cannot start the password hash worker \(file:\/\/\/nonexistent\/srelay\/hash_worker\.ts\): [\s\S]*must list src\/auth\/hash_worker\.ts as an entry point/,
    );
  });

  test("a worker that dies fails its check with `error` and is replaced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-worker-"));
    const script = join(dir, "dying_worker.js");
    // Answers pings; dies on "die"; answers every other check with a match.
    writeFileSync(
      script,
      `self.onmessage = (event) => {
        const request = event.data;
        if (request.password === "die") throw new Error("worker died");
        self.postMessage({ id: request.id, match: true });
      };\n`,
    );
    const dying = await HashWorkerPool.start({ threads: 1, workerUrl: pathToFileURL(script).href });
    try {
      assert.equal(await dying.check("die", "x"), "error");
      assert.equal(await dying.check("live", "x"), "match");
    } finally {
      dying.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a check that takes too long fails with `error` and its worker is replaced", async () => {
    const timed = await HashWorkerPool.start({ threads: 1, checkTimeoutMs: 50 });
    try {
      assert.equal(await timed.check("right", bcryptHash("right", 13)), "error");
      assert.equal(await timed.check("right", sha512), "match");
    } finally {
      timed.close();
    }
  });

  test("close() fails running checks and later ones with `error`", async () => {
    const closing = await HashWorkerPool.start({ threads: 1 });
    const running = closing.check("right", bcryptHash("right", 11));
    closing.close();
    assert.equal(await running, "error");
    assert.equal(await closing.check("right", sha512), "error");
  });
});
