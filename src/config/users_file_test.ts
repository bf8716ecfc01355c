import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { formatIssue } from "./config_issue.ts";
import { hasErrors, isUsersFileComment, loadUsersFile, parseUsersFile, userNameProblem } from "./users_file.ts";

/** A line as `htpasswd -nbB -C 4 USER PASSWORD` prints it. */
function htpasswdLine(user: string, password: string): string {
  return execFileSync("htpasswd", ["-nbB", "-C", "4", user, password], { encoding: "utf8" }).trim();
}

const ALICE = htpasswdLine("alice", "wonderland");
const BOB_HASH = execFileSync("openssl", ["passwd", "-6", "builder"], { encoding: "utf8" }).trim();

function messages(text: string): string[] {
  return parseUsersFile(text, "users").issues.map(formatIssue);
}

describe("parseUsersFile()", () => {
  test("reads htpasswd -B and openssl passwd -6 lines", () => {
    const { users, issues } = parseUsersFile(`${ALICE}\nbob:${BOB_HASH}\n`, "users");
    assert.deepEqual(issues, []);
    assert.deepEqual([...users.keys()], ["alice", "bob"]);
    assert.equal(users.get("alice")?.scheme, "bcrypt");
    assert.equal(users.get("alice")?.cost, 4);
    assert.equal(users.get("alice")?.line, 1);
    assert.equal(users.get("bob")?.scheme, "sha512-crypt");
    assert.equal(users.get("bob")?.hash, BOB_HASH);
    assert.equal(users.get("bob")?.locked, false);
  });

  test("skips blank lines and # or ; comments, counts physical lines, ignores CR, BOM and outer blanks", () => {
    const text = `\uFEFF# users\r\n\r\n   ; old\r\n\t${ALICE}  \r\n  # bob:${BOB_HASH}\r\nbob:${BOB_HASH}`;
    const { users, issues } = parseUsersFile(text, "users");
    assert.deepEqual(issues, []);
    assert.equal(users.get("alice")?.line, 4);
    assert.equal(users.get("bob")?.line, 6);
  });

  test("matches names exactly: no prefix, no case folding (srelay's prefix match is a bug)", () => {
    const { users } = parseUsersFile(`${ALICE}\n`, "users");
    for (const name of ["alic", "ali", "a", "Alice", "alice ", "alicex"]) {
      assert.equal(users.get(name), undefined, name);
    }
  });

  test("a second line for the same user is an error naming the first line", () => {
    assert.deepEqual(messages(`${ALICE}\n# again\n${ALICE}\n`), ["users:3: user 'alice' is already defined on line 1"]);
    assert.equal(parseUsersFile(`${ALICE}\n${ALICE}\n`, "users").users.get("alice")?.line, 1);
  });

  test("marks ! and * entries locked", () => {
    const { users, issues } = parseUsersFile(`carol:!${BOB_HASH}\ndave:*\neve:!\n`, "users");
    assert.deepEqual(issues, []);
    assert.deepEqual(
      [...users.values()].map((entry) => [entry.user, entry.locked, entry.scheme]),
      [["carol", true, "sha512-crypt"], ["dave", true, null], ["eve", true, null]],
    );
  });

  test("reports each bad line as file:line, keeps the good ones, and never repeats a hash", () => {
    const text = [
      ALICE,
      "no colon here",
      "frank:hunter2",
      `:${BOB_HASH}`,
      `gina:${BOB_HASH}:18000:0:99999:7:::`,
      `harry:$1$saltsalt$abcdefghijklmnopqrstuv`,
      `ivan :${BOB_HASH}`,
      `bob:${BOB_HASH.slice(0, -3)}`,
    ].join("\n");
    const { users, issues } = parseUsersFile(text, "users");
    assert.deepEqual([...users.keys()], ["alice"]);
    assert.deepEqual(issues.map(formatIssue), [
      "users:2: expected USER:HASH (no ':' on the line)",
      "users:3: not a password hash (plain text?): use bcrypt ($2y$, `htpasswd -nB USER`) or SHA-crypt ($6$, `openssl passwd -6`)",
      "users:4: the user name is empty",
      "users:5: expected USER:HASH, found 9 ':'-separated fields",
      "users:6: unsupported hash scheme $1$ (MD5-crypt): use bcrypt ($2y$, `htpasswd -nB USER`) or SHA-crypt ($6$, `openssl passwd -6`)",
      "users:7: the user name starts or ends with a blank",
      "users:8: malformed SHA-512-crypt hash (the hash part has 83 characters, not 86)",
    ]);
    for (const issue of issues) {
      assert.ok(!issue.message.includes("hunter2"));
      assert.ok(!issue.message.includes(BOB_HASH.slice(20, 40)));
    }
    assert.equal(hasErrors(issues), true);
  });

  test("a slow cost is a warning and the user is kept", () => {
    const { users, issues } = parseUsersFile(`slow:$2y$15$${"a".repeat(53)}\n`, "users");
    assert.deepEqual(issues.map(formatIssue), ["users:1: warning: bcrypt cost 15 takes seconds of CPU per login"]);
    assert.equal(users.has("slow"), true);
    assert.equal(hasErrors(issues), false);
  });

  test("a file without users gets a warning on line 0", () => {
    assert.deepEqual(messages("# nobody yet\n"), ["users:0: warning: no users: every password login will fail"]);
  });

  test("user names may hold any printable character but ':'", () => {
    const { users, issues } = parseUsersFile(`j\u00f6rg m\u00fcller@example:${BOB_HASH}\n`, "users");
    assert.deepEqual(issues, []);
    assert.equal(users.has("j\u00f6rg m\u00fcller@example"), true);
  });
});

describe("userNameProblem()", () => {
  const CASES: Array<[string, string | null]> = [
    ["alice", null],
    ["", "the user name is empty"],
    ["a:b", "the user name contains ':'"],
    ["a\tb", "the user name contains a control character"],
    ["a\u007fb", "the user name contains a control character"],
    [" a", "the user name starts or ends with a blank"],
    ["#a", "the user name starts with '#' or ';' (a comment)"],
    [";a", "the user name starts with '#' or ';' (a comment)"],
    ["a".repeat(255), null],
    ["\u00e9".repeat(128), "the user name is 256 bytes long (at most 255)"],
  ];
  for (const [user, expected] of CASES) {
    test(`${JSON.stringify(user.slice(0, 12))}: ${expected ?? "fine"}`, () =>
      assert.equal(userNameProblem(user), expected));
  }
});

test("isUsersFileComment() knows blank lines and comments", () => {
  assert.equal(isUsersFileComment("  "), true);
  assert.equal(isUsersFileComment(" # x"), true);
  assert.equal(isUsersFileComment(";x"), true);
  assert.equal(isUsersFileComment("a:#"), false);
});

describe("loadUsersFile()", () => {
  test("reads a file, and reports an unreadable one on line 0", () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-users-"));
    try {
      const path = join(dir, "users");
      writeFileSync(path, `${ALICE}\n`);
      assert.equal(loadUsersFile(path).users.has("alice"), true);
      const missing = loadUsersFile(join(dir, "missing"));
      assert.equal(missing.users.size, 0);
      assert.equal(missing.issues.length, 1);
      assert.match(formatIssue(missing.issues[0]!), /^.*missing:0: Cannot read user file: .*(ENOENT|No such file)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
