import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, test } from "node:test";
import { parseUsersFile } from "../config/users_file.ts";
import { parsePasswdArgs, type PasswdIo, runPasswd, writeUserHash } from "./passwd_command.ts";
import { checkUserHash } from "./user_hash.ts";

const COST = 4; // fast hashes in tests

/** Feeds `chunks` as standard input; collects standard error; records raw-mode switches. */
function fakeIo(chunks: Array<string | Uint8Array>, terminal = false) {
  const errors: string[] = [];
  const rawModes: boolean[] = [];
  const io: PasswdIo = {
    input: (async function* () {
      for (const chunk of chunks) yield typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    })(),
    terminal: terminal ? { setRawMode: (raw) => void rawModes.push(raw) } : undefined,
    error: (text) => void errors.push(text),
  };
  return { io, errors, rawModes, stderr: () => errors.join("") };
}

/** True when `htpasswd -v` accepts `password` for `user` in `file`. */
function htpasswdAccepts(file: string, user: string, password: string): boolean {
  return spawnSync("htpasswd", ["-vb", file, user, password], { stdio: "ignore" }).status === 0;
}

describe("parsePasswdArgs()", () => {
  test("takes USER and -U FILE in any order", () => {
    assert.deepEqual(parsePasswdArgs(["alice", "-U", "users"]), { user: "alice", file: "users" });
    assert.deepEqual(parsePasswdArgs(["-Uusers", "alice"]), { user: "alice", file: "users" });
  });
  const BAD: Array<[string[], RegExp]> = [
    [["alice"], /missing -U FILE/],
    [["-U", "users"], /missing user name/],
    [["alice", "-U"], /-U needs a file/],
    [["alice", "bob", "-U", "f"], /more than one user name/],
    [["alice", "-x", "-U", "f"], /unknown option -x/],
  ];
  for (const [args, message] of BAD) {
    test(`refuses ${args.join(" ")}`, () => {
      assert.throws(
        () => parsePasswdArgs(args),
        (error: unknown) => error instanceof RangeError && message.test(error.message),
      );
    });
  }
});

describe("runPasswd()", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-passwd-"));
    file = join(dir, "users");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("from a pipe: the first line is the password; the file is created with mode 0600", async () => {
    const { io, stderr } = fakeIo(["s3cret p", "ass\nignored\n"]);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, io), 0);
    assert.match(readFileSync(file, "utf8"), /^alice:\$2b\$04\$[./A-Za-z0-9]{53}\n$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(htpasswdAccepts(file, "alice", "s3cret pass"));
    assert.equal(stderr(), `srelay passwd: added alice in ${file}\n`);
    assert.deepEqual(readdirSync(dir), ["users"], "no temporary file is left behind");
  });

  test("a CR before the LF is not part of the password", async () => {
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, fakeIo(["pw\r\n"]).io), 0);
    assert.ok(htpasswdAccepts(file, "alice", "pw"));
  });

  test("replaces the user's line in place, drops a second one, keeps everything else as it was", async () => {
    const bob = execFileSync("htpasswd", ["-nbB", "-C", "4", "bob", "builder"], { encoding: "utf8" }).trim();
    writeFileSync(file, `# users\n\nalice:$2y$04$${"a".repeat(53)}\r\n; note\n${bob}\n alice:*\n`, { mode: 0o644 });
    const { io, stderr } = fakeIo(["new pw\n"]);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, io), 0);
    const lines = readFileSync(file, "utf8").split("\n");
    assert.equal(lines.length, 6);
    assert.deepEqual([lines[0], lines[1], lines[3], lines[4], lines[5]], ["# users", "", "; note", bob, ""]);
    assert.match(lines[2] ?? "", /^alice:\$2b\$04\$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // htpasswd itself refuses `; note` lines, so the file is checked with srelay's own parser here.
    const { users, issues } = parseUsersFile(readFileSync(file, "utf8"), file);
    assert.deepEqual(issues, []);
    assert.ok(checkUserHash("new pw", users.get("alice")?.hash ?? ""));
    assert.ok(checkUserHash("builder", users.get("bob")?.hash ?? ""));
    assert.equal(stderr(), `srelay passwd: changed the password of alice in ${file}\n`);
  });

  test("adds a user to a file without a final newline", async () => {
    writeFileSync(file, "# users");
    assert.equal(await runPasswd({ user: "carol", file, cost: COST }, fakeIo(["pw\n"]).io), 0);
    assert.match(readFileSync(file, "utf8"), /^# users\ncarol:\$2b\$04\$.{53}\n$/);
  });

  test("from a terminal: raw mode, asked twice, Backspace and Ctrl-U edit, nothing echoed", async () => {
    // "s3x", Backspace, "cret"; then "junk", Ctrl-U, "s3cré" (a 2-byte character), Backspace, "et".
    const typed = fakeIo(["s3x", "\x7fcret", "\r", "junk\x15s3cr\u00e9\x7fet\r"], true);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, typed.io), 0);
    assert.deepEqual(typed.rawModes, [true, false]);
    assert.ok(htpasswdAccepts(file, "alice", "s3cret"));
    assert.equal(
      typed.stderr(),
      `New password for alice: \nRetype the password: \nsrelay passwd: added alice in ${file}\n`,
    );
  });

  test("from a terminal: different passwords change nothing", async () => {
    const { io, stderr, rawModes } = fakeIo(["one\r", "two\r"], true);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, io), 1);
    assert.match(stderr(), /the passwords differ; nothing changed/);
    assert.deepEqual(rawModes, [true, false]);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("from a terminal: Ctrl-C gives 130 and Ctrl-D on an empty line gives 1, raw mode always undone", async () => {
    const interrupted = fakeIo(["abc\x03"], true);
    assert.equal(await runPasswd({ user: "alice", file }, interrupted.io), 130);
    assert.deepEqual(interrupted.rawModes, [true, false]);
    const eof = fakeIo(["\x04"], true);
    assert.equal(await runPasswd({ user: "alice", file }, eof.io), 1);
    assert.match(eof.stderr(), /no password given; nothing changed/);
    assert.deepEqual(readdirSync(dir), []);
  });

  const REFUSED: Array<[string, Array<string | Uint8Array>, RegExp]> = [
    ["an empty input", [], /no password on standard input/],
    ["an empty line", ["\n"], /the password is empty/],
    ["256 bytes", ["x".repeat(256)], /256 bytes long \(RFC 1929 carries at most 255\)/],
    ["a NUL", [Uint8Array.from([0x61, 0, 0x62, 0x0a])], /contains NUL/],
    ["invalid UTF-8", [Uint8Array.from([0x61, 0xff, 0x0a])], /not valid UTF-8/],
  ];
  for (const [name, chunks, message] of REFUSED) {
    test(`refuses ${name} and changes nothing`, async () => {
      const { io, stderr } = fakeIo(chunks);
      assert.equal(await runPasswd({ user: "alice", file }, io), 1);
      assert.match(stderr(), message);
      assert.deepEqual(readdirSync(dir), []);
    });
  }

  test("warns that bcrypt ignores bytes past the 72nd", async () => {
    const { io, stderr } = fakeIo([`${"y".repeat(73)}\n`]);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, io), 0);
    assert.match(stderr(), /warning: bcrypt uses only the first 72 bytes/);
  });

  test("a user name the file cannot hold is a usage error", async () => {
    for (const user of ["a:b", "", "#x", "a\nb", "x".repeat(256)]) {
      const { io, stderr } = fakeIo(["pw\n"]);
      assert.equal(await runPasswd({ user, file }, io), 2, JSON.stringify(user));
      assert.match(stderr(), /usage: srelay passwd USER -U FILE/);
    }
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a folder that does not exist is a failure with the reason", async () => {
    const { io, stderr } = fakeIo(["pw\n"]);
    assert.equal(await runPasswd({ user: "alice", file: join(dir, "none", "users"), cost: COST }, io), 1);
    assert.match(stderr(), /cannot write .*none\/users: .*(ENOENT|No such file)/);
  });

  test("writing through a symbolic link updates its target and keeps the link", async () => {
    writeFileSync(join(dir, "real"), "");
    symlinkSync(join(dir, "real"), file);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, fakeIo(["pw\n"]).io), 0);
    assert.ok(htpasswdAccepts(join(dir, "real"), "alice", "pw"));
    assert.ok(htpasswdAccepts(file, "alice", "pw"));
  });

  test("reports problems of the rest of the file", async () => {
    writeFileSync(file, "bob:plaintext\n");
    const { io, stderr } = fakeIo(["pw\n"]);
    assert.equal(await runPasswd({ user: "alice", file, cost: COST }, io), 0);
    assert.match(stderr(), /srelay passwd: .*users:1: not a password hash/);
  });

  test(
    "root rewriting another user's file keeps its owner",
    { skip: process.getuid?.() === 0 ? false : "root only" },
    async () => {
      writeFileSync(file, "");
      chownSync(file, 65534, 65534);
      assert.equal(await runPasswd({ user: "alice", file, cost: COST }, fakeIo(["pw\n"]).io), 0);
      assert.equal(statSync(file).uid, 65534);
      assert.equal(statSync(file).gid, 65534);
    },
  );
});

test("writeUserHash() says whether it added or replaced", async () => {
  const dir = mkdtempSync(join(tmpdir(), "srelay-passwd-"));
  try {
    const file = join(dir, "users");
    assert.equal(await writeUserHash(file, "u", "$2b$04$x"), "added");
    assert.equal(await writeUserHash(file, "u", "$2b$04$y"), "replaced");
    assert.equal(readFileSync(file, "utf8"), "u:$2b$04$y\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const hasScript = spawnSync("sh", ["-c", "command -v script"], { stdio: "ignore" }).status === 0;

describe("processPasswdIo() in a real process", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-passwd-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The command that runs a script under the runtime running this test. */
  function runtimeCommand(script: string): string[] {
    const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
    return "Deno" in globalThis
      ? [process.execPath, "run", "-A", "--config", config, script]
      : [process.execPath, script];
  }

  function probe(): string {
    const script = join(dir, "probe.ts");
    const module = fileURLToPath(new URL("./passwd_command.ts", import.meta.url));
    writeFileSync(
      script,
      `import process from "node:process";\n` +
        `import { parsePasswdArgs, processPasswdIo, runPasswd } from ${JSON.stringify(module)};\n` +
        `process.exit(await runPasswd({ ...parsePasswdArgs(process.argv.slice(2)), cost: 4 }, processPasswdIo()));\n`,
    );
    return script;
  }

  test("reads the password from piped standard input", () => {
    const file = join(dir, "users");
    const [program, ...args] = runtimeCommand(probe());
    const result = spawnSync(program!, [...args, "alice", "-U", file], {
      input: "piped pw\n",
      encoding: "utf8",
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      timeout: 60_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(htpasswdAccepts(file, "alice", "piped pw"));
  });

  test("reads it twice from a terminal without echo (script(1) provides the terminal)", {
    skip: hasScript ? false : "script(1) is not installed",
  }, () => {
    const file = join(dir, "users");
    const command = [...runtimeCommand(probe()), "alice", "-U", file].map((word) => `'${word}'`).join(" ");
    // Typed slowly, as a person would: raw mode is on before the first key.
    const typing = `sleep 2; printf 'tty pw\\r'; sleep 0.5; printf 'tty pw\\r'`;
    const output = execFileSync("sh", ["-c", `(${typing}) | script -qec "$0" /dev/null`, command], {
      encoding: "utf8",
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      timeout: 60_000,
    });
    assert.match(output, /New password for alice: \r?\nRetype the password: \r?\nsrelay passwd: added alice/);
    assert.ok(!output.includes("tty pw"), `the password was echoed: ${JSON.stringify(output)}`);
    assert.ok(htpasswdAccepts(file, "alice", "tty pw"));
  });
});
