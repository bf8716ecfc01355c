import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadUsersFile, parseUsersFile } from "../config/users_file.ts";
import { type HashCheck, type HashChecker, HashWorkerPool } from "./hash_queue.ts";
import { dummyHashFor, UserFileVerifier } from "./user_file.ts";
import { checkUserHash, classifyUserHash } from "./user_hash.ts";

const ALICE = execFileSync("htpasswd", ["-nbB", "-C", "4", "alice", "wonderland"], { encoding: "utf8" }).trim();
const BOB_HASH = execFileSync("openssl", ["passwd", "-6", "builder"], { encoding: "utf8" }).trim();
const TEXT = `${ALICE}\nbob:${BOB_HASH}\ncarol:!${BOB_HASH}\ndave:*\n`;

/** A checker that really checks (on the event loop) and records every hash it was asked about. */
class CountingChecker implements HashChecker {
  readonly hashes: string[] = [];
  answer: HashCheck | null = null;
  check(password: string, hash: string): Promise<HashCheck> {
    this.hashes.push(hash);
    if (this.answer !== null) return Promise.resolve(this.answer);
    return Promise.resolve(checkUserHash(password, hash) ? "match" : "mismatch");
  }
}

function verifierOf(text: string, checker: HashChecker): UserFileVerifier {
  return new UserFileVerifier("users", parseUsersFile(text, "users"), checker);
}

describe("UserFileVerifier", () => {
  test("accepts the right password under the exact name", async () => {
    const checker = new CountingChecker();
    const verifier = verifierOf(TEXT, checker);
    assert.deepEqual(await verifier.verify("alice", "wonderland"), { ok: true, user: "alice" });
    assert.deepEqual(await verifier.verify("bob", "builder"), { ok: true, user: "bob" });
    assert.deepEqual(checker.hashes, [ALICE.slice(6), BOB_HASH]);
  });

  test("a wrong password is wrong_password; a prefix or other case of a name is an unknown user", async () => {
    const verifier = verifierOf(TEXT, new CountingChecker());
    assert.deepEqual(await verifier.verify("alice", "Wonderland"), { ok: false, reason: "wrong_password" });
    for (const name of ["alic", "a", "ALICE", "alice2", "bo"]) {
      assert.deepEqual(await verifier.verify(name, "wonderland"), { ok: false, reason: "unknown_user" }, name);
    }
  });

  test("an unknown user goes through the same check as a wrong password, against a dummy hash", async () => {
    const checker = new CountingChecker();
    const verifier = verifierOf(`${ALICE}\n`, checker);
    await verifier.verify("alice", "wrong");
    await verifier.verify("mallory", "wrong");
    await verifier.verify("mallory", "wonderland");
    assert.equal(checker.hashes.length, 3, "every attempt costs one hash check");
    const [real, dummy, dummyAgain] = checker.hashes as [string, string, string];
    assert.equal(real, ALICE.slice(6));
    assert.notEqual(dummy, real);
    assert.equal(dummyAgain, dummy, "the dummy is made once per file");
    const a = classifyUserHash(real);
    const b = classifyUserHash(dummy);
    assert.ok(a.ok && b.ok && a.scheme === b.scheme && a.cost === b.cost, `dummy ${dummy} is not like ${real}`);
  });

  test("locked entries (!hash, *) are refused after a dummy check, even with the right password", async () => {
    const checker = new CountingChecker();
    const verifier = verifierOf(TEXT, checker);
    assert.deepEqual(await verifier.verify("carol", "builder"), { ok: false, reason: "locked" });
    assert.deepEqual(await verifier.verify("dave", "x"), { ok: false, reason: "locked" });
    assert.equal(checker.hashes.length, 2);
    assert.ok(!checker.hashes.includes(BOB_HASH));
  });

  test("a password or name with NUL is refused after a dummy check (crypt would cut it there)", async () => {
    const checker = new CountingChecker();
    const verifier = verifierOf(TEXT, checker);
    assert.deepEqual(await verifier.verify("bob", "builder\0junk"), {
      ok: false,
      reason: "wrong_password",
      detail: "the password contains NUL",
    });
    assert.deepEqual(await verifier.verify("bob\0", "builder"), { ok: false, reason: "unknown_user" });
    assert.equal(checker.hashes.length, 2);
    assert.ok(!checker.hashes.includes(BOB_HASH));
  });

  test("a busy queue is busy, a failed worker is unavailable", async () => {
    const checker = new CountingChecker();
    const verifier = verifierOf(TEXT, checker);
    checker.answer = "busy";
    assert.deepEqual(await verifier.verify("alice", "wonderland"), { ok: false, reason: "busy" });
    assert.deepEqual(await verifier.verify("nobody", "x"), { ok: false, reason: "busy" });
    checker.answer = "error";
    assert.deepEqual(await verifier.verify("alice", "wonderland"), {
      ok: false,
      reason: "unavailable",
      detail: "the hash worker failed",
    });
  });

  test("a file with errors is refused", () => {
    assert.throws(() => verifierOf("x:y\n", new CountingChecker()), /has errors/);
  });

  test("the dummy follows the most common scheme and cost, and is bcrypt for an empty file", () => {
    const sha = parseUsersFile(`a:${BOB_HASH}\nb:${BOB_HASH}\n${ALICE}\n`, "users").users;
    assert.match(dummyHashFor(sha), /^\$6\$[./0-9A-Za-z]{16}\$/);
    assert.match(dummyHashFor(new Map()), /^\$2b\$10\$/);
  });
});

describe("UserFileVerifier with the hash workers and a real file", () => {
  test("verifies htpasswd and openssl lines off the event loop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-userfile-"));
    const pool = await HashWorkerPool.start({ threads: 1 });
    try {
      const path = join(dir, "users");
      writeFileSync(path, TEXT);
      const parsed = loadUsersFile(path);
      assert.deepEqual(parsed.issues, []);
      const verifier = new UserFileVerifier(path, parsed, pool);
      assert.deepEqual(await verifier.verify("alice", "wonderland"), { ok: true, user: "alice" });
      assert.deepEqual(await verifier.verify("bob", "wrong"), { ok: false, reason: "wrong_password" });
      assert.deepEqual(await verifier.verify("zed", "wrong"), { ok: false, reason: "unknown_user" });
      assert.equal(verifier.size, 4);
    } finally {
      pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
