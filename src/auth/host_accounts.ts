/**
 * The host's accounts as SOCKS5 users (srelay's default with `-a p` and no
 * `-U`): the user is looked up in /etc/passwd, the hash in /etc/shadow, and
 * the password is checked with the host's own crypt(3) (a `CryptFunction`
 * from `src/runtime/crypt_deno.ts` or `crypt_bun.ts`), so every scheme the
 * host uses works: yescrypt, SHA-crypt, bcrypt, MD5-crypt.
 *
 * - Locked accounts (a hash starting with `!` or `*`, an empty hash, or no
 *   shadow entry) never log in.
 * - Expired accounts do not either, as pam_unix decides: the shadow expiry
 *   date has come, or the password is past its maximum age plus the
 *   inactive period. srelay accepts expired accounts; that bug is not kept.
 * - Unknown users and accounts without a usable hash still cost one
 *   crypt(3) call, as long as a wrong password: the setting is the hash of
 *   an account of the scheme most accounts use, and the result is thrown
 *   away (crypt(3) needs a valid setting per scheme, which only the host's
 *   own hashes are sure to give).
 * - The files are read again whenever they change (one `stat` of each per
 *   login), so `passwd -l` or `chage -E` takes effect at the next login.
 * - crypt(3) calls go through a `BoundedQueue`: a full queue answers `busy`.
 *
 * The paths are options so tests can use their own files.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import { BoundedQueue } from "./hash_queue.ts";
import { shaCrypt } from "./sha_crypt.ts";
import { randomCryptChars } from "./user_hash.ts";
import {
  checkable,
  constantTimeEqual,
  type CryptFunction,
  failure,
  type PasswordVerifier,
  type VerifyResult,
} from "./verifier.ts";

/** One /etc/shadow entry; numeric fields are days since 1970-01-01, -1 when empty. */
export interface ShadowEntry {
  readonly hash: string;
  readonly lastChange: number;
  readonly maxAge: number;
  readonly inactive: number;
  readonly expire: number;
}

/** Options of `HostAccountVerifier.open`. */
export interface HostAccountsOptions {
  /** crypt(3) of the host (`loadDenoCrypt()` or `loadBunCrypt()`). */
  readonly crypt: CryptFunction;
  /** Default `/etc/passwd`. */
  readonly passwdPath?: string;
  /** Default `/etc/shadow`. */
  readonly shadowPath?: string;
  /** The clock, in milliseconds since the epoch (tests set it). */
  readonly now?: () => number;
  /** crypt(3) calls at once. Default 2. */
  readonly concurrency?: number;
  /** crypt(3) calls that may wait; more are answered `busy`. Default 64. */
  readonly maxQueued?: number;
}

const DAY_MS = 86_400_000;

/**
 * Parses /etc/passwd text into user name → password field (`x` when the
 * hash is in /etc/shadow). NIS lines (`+`, `-`) and malformed lines are skipped.
 */
export function parsePasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const line of text.split("\n")) {
    const fields = line.replace(/\r$/, "").split(":");
    const name = fields[0] ?? "";
    if (fields.length < 2 || name === "" || name.startsWith("+") || name.startsWith("-")) continue;
    if (!users.has(name)) users.set(name, fields[1] ?? "");
  }
  return users;
}

function day(field: string | undefined): number {
  if (field === undefined || !/^[0-9]+$/.test(field)) return -1;
  return Number(field);
}

/** Parses /etc/shadow text into user name → entry. Malformed lines are skipped. */
export function parseShadow(text: string): Map<string, ShadowEntry> {
  const users = new Map<string, ShadowEntry>();
  for (const line of text.split("\n")) {
    const fields = line.replace(/\r$/, "").split(":");
    const name = fields[0] ?? "";
    if (fields.length < 2 || name === "" || name.startsWith("+") || name.startsWith("-") || users.has(name)) continue;
    users.set(name, {
      hash: fields[1] ?? "",
      lastChange: day(fields[2]),
      maxAge: day(fields[4]),
      inactive: day(fields[6]),
      expire: day(fields[7]),
    });
  }
  return users;
}

/**
 * Why the account cannot log in on day `today` (days since the epoch), as
 * pam_unix decides, or `null` when it can.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const entry = { hash: "$6$x$y", lastChange: 19000, maxAge: -1, inactive: -1, expire: 0 };
 * assert.equal(expiryProblem(entry, 20000), "the account expired on 1970-01-01");
 * ```
 */
export function expiryProblem(entry: ShadowEntry, today: number): string | null {
  if (entry.expire >= 0 && today >= entry.expire) return `the account expired on ${isoDay(entry.expire)}`;
  if (entry.lastChange > 0 && entry.maxAge >= 0 && entry.inactive >= 0) {
    const end = entry.lastChange + entry.maxAge + entry.inactive;
    if (today > end) return `the password expired and its inactive period ended on ${isoDay(end)}`;
  }
  return null;
}

function isoDay(days: number): string {
  return new Date(days * DAY_MS).toISOString().slice(0, 10);
}

/** What the files said when last read. */
interface Snapshot {
  readonly stamp: string;
  readonly passwd: ReadonlyMap<string, string>;
  readonly shadow: ReadonlyMap<string, ShadowEntry>;
  readonly dummy: string;
}

/** The scheme of a crypt(3) hash: `$6$`, `$y$`, `$2b$`... or `des`. */
function schemeOf(hash: string): string {
  return /^\$[^$]+\$/.exec(hash)?.[0] ?? "des";
}

function usable(hash: string): boolean {
  return hash !== "" && !hash.startsWith("!") && !hash.startsWith("*");
}

/** The setting unknown users are checked with: a hash of the scheme most accounts use (or a fresh `$6$` salt). */
function dummyFor(shadow: ReadonlyMap<string, ShadowEntry>, passwd: ReadonlyMap<string, string>): string {
  const first = new Map<string, { count: number; hash: string }>();
  const hashes = [...[...shadow.values()].map((entry) => entry.hash), ...passwd.values()];
  for (const hash of hashes) {
    if (!usable(hash) || hash === "x" || !hash.startsWith("$")) continue;
    const seen = first.get(schemeOf(hash));
    if (seen === undefined) first.set(schemeOf(hash), { count: 1, hash });
    else seen.count++;
  }
  let best: { count: number; hash: string } | undefined;
  for (const candidate of first.values()) if (best === undefined || candidate.count > best.count) best = candidate;
  return best?.hash ?? `$6$${randomCryptChars(16)}$`;
}

async function readChecked(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const hint = code === "EACCES" || code === "EPERM"
      ? ": permission denied (the host's accounts need srelay to run as root; or use -U FILE)"
      : code === "ENOENT"
      ? ": no such file (this system keeps no host accounts there; use -U FILE)"
      : `: ${error instanceof Error ? error.message : String(error)}`;
    throw new Error(`Cannot read ${what} ${path}${hint}`);
  }
}

/** The `PasswordVerifier` of the host's accounts. */
export class HostAccountVerifier implements PasswordVerifier {
  readonly passwdPath: string;
  readonly shadowPath: string;
  readonly #crypt: CryptFunction;
  readonly #now: () => number;
  readonly #queue: BoundedQueue;
  #snapshot: Snapshot;
  #refreshing: Promise<Snapshot> | null = null;

  private constructor(options: HostAccountsOptions, snapshot: Snapshot) {
    this.passwdPath = options.passwdPath ?? "/etc/passwd";
    this.shadowPath = options.shadowPath ?? "/etc/shadow";
    this.#crypt = options.crypt;
    this.#now = options.now ?? Date.now;
    this.#queue = new BoundedQueue(options.concurrency ?? 2, options.maxQueued ?? 64);
    this.#snapshot = snapshot;
  }

  /**
   * Reads both files and checks that crypt(3) works. Rejects with an `Error`
   * saying what is missing (a file that cannot be read, for example not
   * running as root, or a crypt(3) that gives wrong answers): start-up must
   * fail rather than accept or refuse everyone silently.
   */
  static async open(options: HostAccountsOptions): Promise<HostAccountVerifier> {
    const passwdPath = options.passwdPath ?? "/etc/passwd";
    const shadowPath = options.shadowPath ?? "/etc/shadow";
    const snapshot = await HostAccountVerifier.#read(passwdPath, shadowPath);
    const probe = "srelay-self-test";
    const setting = "$6$srelayselftest$";
    const expected = shaCrypt(probe, setting);
    let got: string | null;
    try {
      got = await options.crypt(probe, setting);
    } catch (error) {
      throw new Error(
        `Cannot use the host's accounts: crypt(3) failed (${error instanceof Error ? error.message : error})`,
      );
    }
    if (got !== expected) {
      throw new Error("Cannot use the host's accounts: crypt(3) gave a wrong SHA-512-crypt hash in its self-test");
    }
    return new HostAccountVerifier(options, snapshot);
  }

  static async #read(passwdPath: string, shadowPath: string): Promise<Snapshot> {
    const stamp = await HostAccountVerifier.#stamp(passwdPath, shadowPath);
    const [passwdText, shadowText] = await Promise.all([
      readChecked(passwdPath, "the account file"),
      readChecked(shadowPath, "the shadow password file"),
    ]);
    const passwd = parsePasswd(passwdText);
    const shadow = parseShadow(shadowText);
    return { stamp, passwd, shadow, dummy: dummyFor(shadow, passwd) };
  }

  static async #stamp(passwdPath: string, shadowPath: string): Promise<string> {
    const parts: string[] = [];
    for (const path of [passwdPath, shadowPath]) {
      try {
        const info = await stat(path);
        parts.push(`${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`);
      } catch {
        parts.push("missing");
      }
    }
    return parts.join("/");
  }

  /** The snapshot, read again when either file changed. */
  async #current(): Promise<Snapshot> {
    if (this.#refreshing !== null) return await this.#refreshing;
    const stamp = await HostAccountVerifier.#stamp(this.passwdPath, this.shadowPath);
    if (stamp === this.#snapshot.stamp) return this.#snapshot;
    if (this.#refreshing === null) {
      this.#refreshing = HostAccountVerifier.#read(this.passwdPath, this.shadowPath).finally(() => {
        this.#refreshing = null;
      });
    }
    this.#snapshot = await this.#refreshing;
    return this.#snapshot;
  }

  async verify(user: string, password: string): Promise<VerifyResult> {
    let snapshot: Snapshot;
    try {
      snapshot = await this.#current();
    } catch (error) {
      return failure("unavailable", error instanceof Error ? error.message : String(error));
    }
    const passwdField = checkable(user) ? snapshot.passwd.get(user) : undefined;
    const entry = passwdField === undefined ? undefined : snapshot.shadow.get(user);
    const hash = entry?.hash ?? (passwdField === "x" ? undefined : passwdField);
    if (passwdField === undefined || hash === undefined || !usable(hash) || !checkable(password)) {
      const crypted = await this.#run(password, snapshot.dummy);
      if (crypted === "busy") return failure("busy");
      if (passwdField === undefined) return failure("unknown_user");
      if (hash === undefined) return failure("locked", "no shadow entry");
      if (hash === "") return failure("locked", "no password set");
      if (!usable(hash)) return failure("locked", `the hash starts with ${hash[0]}`);
      return failure("wrong_password", "the password contains NUL");
    }
    const crypted = await this.#run(password, hash);
    if (crypted === "busy") return failure("busy");
    if (crypted instanceof Error) return failure("unavailable", `crypt(3) failed: ${crypted.message}`);
    if (crypted === null) return failure("unavailable", `libcrypt cannot compute ${schemeOf(hash)} hashes`);
    if (!constantTimeEqual(crypted, hash)) return failure("wrong_password");
    const problem = entry === undefined ? null : expiryProblem(entry, Math.floor(this.#now() / DAY_MS));
    if (problem !== null) return failure("expired", problem);
    return { ok: true, user };
  }

  /** crypt(3) through the queue: the hash, `null` (unusable setting), an `Error`, or `busy`. */
  async #run(password: string, setting: string): Promise<string | null | Error | "busy"> {
    const job = this.#queue.run(() => this.#crypt(password, setting));
    if (job === undefined) return "busy";
    try {
      return await job;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
