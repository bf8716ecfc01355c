/**
 * `srelay passwd USER -U FILE`: sets USER's password in a user file.
 *
 * - From a terminal the password is read twice without echo (raw mode:
 *   Backspace, Ctrl-U, Ctrl-C and Ctrl-D work); from a pipe or file, the
 *   first line of standard input is the password.
 * - The password must be 1..255 bytes of UTF-8 without NUL (what RFC 1929
 *   can carry); beyond 72 bytes bcrypt ignores the rest, which is warned of.
 * - The user's line becomes `USER:BCRYPT-HASH` (cost 10): replaced in place
 *   if the user is there (a second line for the same user is dropped),
 *   added at the end otherwise. Comments and other lines are kept as they
 *   are. The file is written to a temporary file in the same folder with
 *   mode 0600 and renamed over the old one, so a reader never sees half a
 *   file; when root rewrites someone else's file, the owner is kept.
 *
 * @module
 */
import { chown, open, readFile, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { isUsersFileComment, parseUsersFile, userNameProblem } from "../config/users_file.ts";
import { formatIssue } from "../config/config_issue.ts";
import { bcryptHash, PASSWD_BCRYPT_COST, randomCryptChars } from "./user_hash.ts";

/** What the command reads from and writes to. */
export interface PasswdIo {
  /** Standard input. */
  readonly input: AsyncIterable<Uint8Array>;
  /** Present when standard input is a terminal: turns raw mode (no echo) on and off. */
  readonly terminal?: { setRawMode(raw: boolean): void };
  /** Writes to standard error (prompts, messages). */
  error(text: string): void;
}

/** What `parsePasswdArgs` found. */
export interface PasswdOptions {
  readonly user: string;
  readonly file: string;
  /** bcrypt cost; default 10. */
  readonly cost?: number;
}

/** The command's usage line. */
export const PASSWD_USAGE = "usage: srelay passwd USER -U FILE";

/**
 * Parses the arguments after `passwd`: a user name and `-U FILE` (or
 * `-UFILE`), in any order. Throws `RangeError` (a usage error) otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parsePasswdArgs(["-U", "users", "alice"]), { user: "alice", file: "users" });
 * ```
 */
export function parsePasswdArgs(args: readonly string[]): PasswdOptions {
  let user: string | undefined;
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "-U") {
      file = args[++i];
      if (file === undefined) throw new RangeError(`-U needs a file\n${PASSWD_USAGE}`);
    } else if (arg.startsWith("-U")) {
      file = arg.slice(2);
    } else if (arg.startsWith("-") && arg !== "-") {
      throw new RangeError(`unknown option ${arg}\n${PASSWD_USAGE}`);
    } else if (user === undefined) {
      user = arg;
    } else {
      throw new RangeError(`more than one user name\n${PASSWD_USAGE}`);
    }
  }
  if (user === undefined) throw new RangeError(`missing user name\n${PASSWD_USAGE}`);
  if (file === undefined || file === "") throw new RangeError(`missing -U FILE\n${PASSWD_USAGE}`);
  return { user, file };
}

/** Standard input and error of this process. */
export function processPasswdIo(): PasswdIo {
  const stdin = process.stdin as unknown as AsyncIterable<Uint8Array> & {
    isTTY?: boolean;
    setRawMode?: (raw: boolean) => void;
  };
  const setRawMode = stdin.setRawMode;
  return {
    input: stdin,
    terminal: stdin.isTTY === true && setRawMode !== undefined
      ? { setRawMode: (raw) => setRawMode.call(stdin, raw) }
      : undefined,
    error: (text) => void process.stderr.write(text),
  };
}

/** Reads bytes one at a time from an async iterable of chunks. */
class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #offset = 0;

  constructor(input: AsyncIterable<Uint8Array>) {
    this.#iterator = input[Symbol.asyncIterator]();
  }

  /** The next byte, or `null` at the end of input. */
  async next(): Promise<number | null> {
    while (this.#offset >= this.#chunk.length) {
      const step = await this.#iterator.next();
      if (step.done === true) return null;
      this.#chunk = typeof step.value === "string" ? new TextEncoder().encode(step.value) : step.value;
      this.#offset = 0;
    }
    return this.#chunk[this.#offset++] as number;
  }

  /** Stops reading (lets the process exit). */
  async close(): Promise<void> {
    this.#chunk.fill(0);
    await this.#iterator.return?.();
  }
}

class Interrupted extends Error {}

/** One line from a pipe: up to LF, without a CR before it; `null` at the end of empty input. */
async function readPipedLine(reader: ByteReader): Promise<Uint8Array | null> {
  const bytes: number[] = [];
  for (;;) {
    const byte = await reader.next();
    if (byte === null) {
      if (bytes.length === 0) return null;
      break;
    }
    if (byte === 0x0a) break;
    bytes.push(byte);
  }
  if (bytes[bytes.length - 1] === 0x0d) bytes.pop();
  return Uint8Array.from(bytes);
}

/** One line typed in raw mode (no echo). */
async function readTypedLine(reader: ByteReader): Promise<Uint8Array> {
  const bytes: number[] = [];
  for (;;) {
    const byte = await reader.next();
    if (byte === null || byte === 0x0d || byte === 0x0a) break;
    if (byte === 0x03) throw new Interrupted("interrupted");
    if (byte === 0x04) {
      if (bytes.length === 0) throw new Interrupted("no password given");
      break;
    }
    if (byte === 0x15) {
      bytes.length = 0;
    } else if (byte === 0x7f || byte === 0x08) {
      // Remove one UTF-8 character: its continuation bytes, then its first byte.
      while (bytes.length > 0 && ((bytes[bytes.length - 1] as number) & 0xc0) === 0x80) bytes.pop();
      bytes.pop();
    } else if (byte >= 0x20 || byte === 0x09) {
      bytes.push(byte);
    }
  }
  return Uint8Array.from(bytes);
}

/** Why `password` cannot be used, or `null`. */
function passwordProblem(password: Uint8Array): string | null {
  if (password.length === 0) return "the password is empty";
  if (password.length > 255) return `the password is ${password.length} bytes long (RFC 1929 carries at most 255)`;
  if (password.includes(0)) return "the password contains NUL";
  return null;
}

/**
 * Replaces `user`'s line in `file` with `user:hash`, or adds it, writing
 * the whole file anew (mode 0600) and renaming it into place.
 */
export async function writeUserHash(file: string, user: string, hash: string): Promise<"added" | "replaced"> {
  let target = file;
  let text = "";
  let owner: { uid: number; gid: number } | null = null;
  try {
    target = await realpath(file);
    text = await readFile(target, "utf8");
    const info = await stat(target);
    owner = { uid: info.uid, gid: info.gid };
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ENOENT") throw error;
  }
  const lines = text === "" ? [] : text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const out: string[] = [];
  let replaced = false;
  for (const line of lines) {
    if (!isUsersFileComment(line)) {
      const trimmed = line.replace(/\r$/, "").trim();
      const colon = trimmed.indexOf(":");
      if ((colon === -1 ? trimmed : trimmed.slice(0, colon)) === user) {
        if (!replaced) out.push(`${user}:${hash}`);
        replaced = true;
        continue;
      }
    }
    out.push(line);
  }
  if (!replaced) out.push(`${user}:${hash}`);
  const temporary = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomCryptChars(8).replace(/[./]/g, "x")}.tmp`,
  );
  const handle = await open(temporary, "wx", 0o600);
  try {
    try {
      await handle.writeFile(`${out.join("\n")}\n`);
      await handle.chmod(0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (owner !== null && process.getuid?.() === 0) await chown(temporary, owner.uid, owner.gid).catch(() => {});
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
  return replaced ? "replaced" : "added";
}

/**
 * Runs `srelay passwd`. Resolves with the exit code: 0 done, 1 failure
 * (passwords differ, empty password, file not writable), 2 usage error,
 * 130 interrupted with Ctrl-C.
 */
export async function runPasswd(options: PasswdOptions, io: PasswdIo): Promise<number> {
  const problem = userNameProblem(options.user);
  if (problem !== null) {
    io.error(`srelay passwd: ${problem}\n${PASSWD_USAGE}\n`);
    return 2;
  }
  const reader = new ByteReader(io.input);
  let password: Uint8Array | null;
  try {
    if (io.terminal !== undefined) {
      io.terminal.setRawMode(true);
      try {
        io.error(`New password for ${options.user}: `);
        password = await readTypedLine(reader);
        io.error("\n");
        io.error("Retype the password: ");
        const again = await readTypedLine(reader);
        io.error("\n");
        const same = again.length === password.length && again.every((byte, i) => byte === password?.[i]);
        again.fill(0);
        if (!same) {
          password.fill(0);
          io.error("srelay passwd: the passwords differ; nothing changed\n");
          return 1;
        }
      } finally {
        io.terminal.setRawMode(false);
      }
    } else {
      password = await readPipedLine(reader);
    }
  } catch (error) {
    if (error instanceof Interrupted) {
      io.error(`\nsrelay passwd: ${error.message}; nothing changed\n`);
      return error.message === "interrupted" ? 130 : 1;
    }
    throw error;
  } finally {
    await reader.close();
  }
  if (password === null) {
    io.error("srelay passwd: no password on standard input; nothing changed\n");
    return 1;
  }
  const passwordIssue = passwordProblem(password);
  if (passwordIssue !== null) {
    password.fill(0);
    io.error(`srelay passwd: ${passwordIssue}; nothing changed\n`);
    return 1;
  }
  if (password.length > 72) io.error("srelay passwd: warning: bcrypt uses only the first 72 bytes of the password\n");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(password);
  } catch {
    password.fill(0);
    io.error("srelay passwd: the password is not valid UTF-8; nothing changed\n");
    return 1;
  } finally {
    password.fill(0);
  }
  const hash = bcryptHash(text, options.cost ?? PASSWD_BCRYPT_COST);
  let outcome: "added" | "replaced";
  try {
    outcome = await writeUserHash(options.file, options.user, hash);
  } catch (error) {
    io.error(`srelay passwd: cannot write ${options.file}: ${error instanceof Error ? error.message : error}\n`);
    return 1;
  }
  try {
    for (const issue of parseUsersFile(await readFile(options.file, "utf8"), options.file).issues) {
      io.error(`srelay passwd: ${formatIssue(issue)}\n`);
    }
  } catch {
    // The file was written; a failed re-read only loses the check.
  }
  io.error(
    `srelay passwd: ${outcome === "added" ? "added" : "changed the password of"} ${options.user} in ${options.file}\n`,
  );
  return 0;
}
