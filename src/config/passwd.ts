/**
 * srelay.passwd: the user name and password srelay gives each next hop
 * (RFC 1929 for SOCKS v5 hops, `Proxy-Authorization: Basic` for HTTP hops).
 *
 * ```text
 * # proxy-host[/port]   user      password
 * 192.168.1.1           hogahoge  %"aXhe
 * 2.2.2.100/10080       hogehoge  %"aXhe
 * [2001:db8::1]/1080    u         p
 * ```
 *
 * Lines are split as in srelay.conf: `#` or `;` as the first character makes
 * a comment, and after the host field SP, TAB, `,`, `;` and `#` all separate
 * fields, so a user name or password cannot contain them. The first matching
 * line wins: IP addresses match exactly, names by case-insensitive suffix on
 * a dot boundary, `*` matches every hop, and a non-zero `/port` must equal
 * the hop's port. Issue messages never contain user names or passwords.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import ipaddr from "ipaddr.js";
import type { ConfigIssue } from "./config_issue.ts";
import { configLines } from "./srelay_conf.ts";

/**
 * One valid srelay.passwd line. `host` is `*` (any hop), an IPv4 or IPv6
 * address (without brackets), or a lower-case name suffix (a leading `.`
 * means subdomains only); `port` 0 means any port.
 */
export interface PasswdEntry {
  readonly line: number;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
}

/** A user name and password for one next hop. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** The hop credentials are looked up for, as in a srelay.conf hop. */
export interface PasswdHop {
  readonly host: string;
  readonly port: number;
}

/** The valid entries of a file, in file order, and every problem found in it. */
export interface SrelayPasswd {
  readonly entries: PasswdEntry[];
  readonly issues: ConfigIssue[];
}

const MAX_PORT = 65535;
const MAX_CREDENTIAL_BYTES = 255;
const MAX_NAME_LENGTH = 255;
const encoder = new TextEncoder();

/**
 * Parses srelay.passwd text, reporting every problem with its physical line.
 * Lines with errors are left out of `entries`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const { entries } = parseSrelayPasswd("2.2.2.100/10080 alice s3cret\n", "srelay.passwd");
 * assert.deepEqual(entries[0], { line: 1, host: "2.2.2.100", port: 10080, username: "alice", password: "s3cret" });
 * ```
 */
export function parseSrelayPasswd(text: string, file: string): SrelayPasswd {
  const entries: PasswdEntry[] = [];
  const issues: ConfigIssue[] = [];
  for (const { line, raw, fields: split } of configLines(text)) {
    let failed = false;
    const report = (severity: "error" | "warning", message: string): void => {
      if (severity === "error") failed = true;
      issues.push({ file, line, severity, message });
    };
    const target = parseHostField(split.first, report);
    const [user, pass, ...extra] = split.rest;
    const separator = /[#;]/.exec(raw.slice(raw.indexOf(split.first) + split.first.length));
    if (separator !== null) {
      report(
        "warning",
        `'${separator[0]}' separates fields here: a user name or password cannot contain '#', ';', ',', space or TAB`,
      );
    }
    if (user === undefined) {
      report("error", `user name and password missing for '${split.first}'`);
      continue;
    }
    if (pass === undefined) {
      report("error", `password missing for '${split.first}'`);
      continue;
    }
    if (encoder.encode(user.text).length > MAX_CREDENTIAL_BYTES) {
      report("error", `user name for '${split.first}' is longer than ${MAX_CREDENTIAL_BYTES} bytes`);
    }
    if (encoder.encode(pass.text).length > MAX_CREDENTIAL_BYTES) {
      report("error", `password for '${split.first}' is longer than ${MAX_CREDENTIAL_BYTES} bytes`);
    }
    if (extra.length > 0) {
      report("warning", `${extra.length} extra field(s) after the password for '${split.first}' are ignored`);
    }
    if (target !== null && !failed) {
      entries.push({ line, host: target.host, port: target.port, username: user.text, password: pass.text });
    }
  }
  return { entries, issues };
}

/**
 * Finds the credentials for a hop: the first entry whose host matches
 * (IP addresses exactly, names by dot-boundary suffix, `*` always) and whose
 * port is 0 or equal to the hop's.
 */
export function findCredentials(entries: readonly PasswdEntry[], hop: PasswdHop): Credentials | null {
  const hopAddress = addressKey(hop.host);
  const hopName = normaliseName(hop.host);
  for (const entry of entries) {
    if (entry.port !== 0 && entry.port !== hop.port) continue;
    if (hostMatches(entry.host, hopAddress, hopName)) {
      return { username: entry.username, password: entry.password };
    }
  }
  return null;
}

/** How often `lookup` checks the file for changes, at most. */
export const PASSWD_CHECK_INTERVAL_MS = 1000;

/** Options for `PasswdFile`. */
export interface PasswdFileOptions {
  /**
   * Told about problems found by the checks `lookup` makes: each issue of
   * contents read anew, and a file that became unreadable (once, until it
   * reads again). `refresh` and `reload` return theirs to the caller instead.
   */
  readonly onIssue?: (issue: ConfigIssue) => void;
  /** Clock in milliseconds (tests). */
  readonly now?: () => number;
}

/**
 * A srelay.passwd file, re-read when its inode, size, mtime or ctime changes,
 * so credentials change without a restart (srelay re-opened it on every
 * use). `lookup` checks for a change at most once a second. When the file
 * cannot be read any more, the credentials read before stay in force and
 * `onIssue` is told once. Issue messages never contain user names or
 * passwords.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { PasswdFile } from "./passwd.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "srelay-passwd-example-"));
 * writeFileSync(join(dir, "srelay.passwd"), "proxy.example alice s3cret\n");
 * const passwd = new PasswdFile(join(dir, "srelay.passwd"), { onIssue: (issue) => console.warn(issue.message) });
 * const unreadable = passwd.refresh().find((issue) => issue.line === 0); // undefined: start-up may go on
 * passwd.lookup({ host: "proxy.example", port: 1080 }); // { username: "alice", password: "s3cret" }
 * rmSync(dir, { recursive: true });
 * ```
 */
export class PasswdFile {
  readonly #path: string;
  readonly #onIssue: (issue: ConfigIssue) => void;
  readonly #now: () => number;
  #stamp: string | null = null;
  #entries: readonly PasswdEntry[] = [];
  #issues: readonly ConfigIssue[] = [];
  #checkedAt = -Infinity;
  #readOnce = false;
  #unreadable = false;

  constructor(path: string, options: PasswdFileOptions = {}) {
    this.#path = path;
    this.#onIssue = options.onIssue ?? (() => {});
    this.#now = options.now ?? Date.now;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Problems found by the latest read. An unreadable file is one issue on
   * line 0: an error when nothing was ever read from it, else a warning
   * (the credentials read before stay in force).
   */
  get lastIssues(): readonly ConfigIssue[] {
    return this.#issues;
  }

  /** Credentials for the hop, after checking the file for changes if a second has passed. */
  lookup(hop: PasswdHop): Credentials | null {
    if (this.#now() - this.#checkedAt >= PASSWD_CHECK_INTERVAL_MS) this.#read(this.#onIssue);
    return findCredentials(this.#entries, hop);
  }

  /**
   * Re-reads the file if it changed since the last read and returns
   * `lastIssues`; at start-up, an issue on line 0 means it cannot be read.
   */
  refresh(): readonly ConfigIssue[] {
    return this.#read(() => {});
  }

  #read(report: (issue: ConfigIssue) => void): readonly ConfigIssue[] {
    this.#checkedAt = this.#now();
    let stamp: string;
    let parsed: SrelayPasswd;
    try {
      const stat = statSync(this.#path);
      stamp = `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
      if (stamp === this.#stamp) return this.#issues;
      parsed = parseSrelayPasswd(readFileSync(this.#path, "utf8"), this.#path);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      const issue: ConfigIssue = this.#readOnce
        ? {
          file: this.#path,
          line: 0,
          severity: "warning",
          message: `Cannot read password file: ${detail}; the credentials read before stay in force`,
        }
        : { file: this.#path, line: 0, severity: "error", message: `Cannot read password file: ${detail}` };
      this.#stamp = null;
      this.#issues = [issue];
      if (!this.#unreadable) report(issue);
      this.#unreadable = true;
      return this.#issues;
    }
    this.#stamp = stamp;
    this.#entries = parsed.entries;
    this.#issues = parsed.issues;
    this.#readOnce = true;
    this.#unreadable = false;
    for (const issue of parsed.issues) report(issue);
    return this.#issues;
  }
}

type Report = (severity: "error" | "warning", message: string) => void;

function parseHostField(field: string, report: Report): { host: string; port: number } | null {
  const slash = field.indexOf("/");
  const hostText = slash < 0 ? field : field.slice(0, slash);
  const portText = slash < 0 ? "" : field.slice(slash + 1);
  let port = 0;
  if (portText !== "") {
    port = /^[0-9]+$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port <= MAX_PORT)) {
      report("error", `invalid port '${portText}' in '${field}'`);
      return null;
    }
  }
  const host = parseHost(hostText, field, report);
  return host === null ? null : { host, port };
}

function parseHost(text: string, field: string, report: Report): string | null {
  if (text === "") {
    report("error", `proxy host missing in '${field}'`);
    return null;
  }
  if (text.startsWith("[")) {
    const inner = text.endsWith("]") ? text.slice(1, -1) : "";
    if (inner === "" || !ipaddr.IPv6.isValid(inner)) {
      report("error", `invalid IPv6 address '${text}'`);
      return null;
    }
    return inner;
  }
  if (text.includes(":")) {
    if (!ipaddr.IPv6.isValid(text)) {
      report("error", `invalid proxy host '${text}'`);
      return null;
    }
    report("warning", `unbracketed IPv6 address '${text}' is read as IPv6; write [${text}]`);
    return text;
  }
  if (/^[0-9.]+$/.test(text)) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
      report("error", `invalid IPv4 address '${text}'`);
      return null;
    }
    return text;
  }
  if (text.length > MAX_NAME_LENGTH) {
    report("error", `proxy host '${text}' is longer than ${MAX_NAME_LENGTH} characters`);
    return null;
  }
  if (text.startsWith("*")) {
    const suffix = text.replace(/^\*+/, "").toLowerCase();
    if (suffix === "") return "*";
    report(
      "warning",
      `'${text}' is read as the suffix '${suffix}' (srelay read any host starting with '*' as match-all); write * to match every hop`,
    );
    return normaliseName(suffix);
  }
  return normaliseName(text);
}

function hostMatches(entryHost: string, hopAddress: string | null, hopName: string): boolean {
  if (entryHost === "*") return true;
  const entryAddress = addressKey(entryHost);
  if (entryAddress !== null || hopAddress !== null) return entryAddress === hopAddress;
  if (entryHost.startsWith(".")) return hopName.endsWith(entryHost);
  return hopName === entryHost || hopName.endsWith(`.${entryHost}`);
}

function addressKey(host: string): string | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return `4:${ipaddr.IPv4.parse(host).toString()}`;
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (!ipaddr.IPv6.isValid(bare)) return null;
  const v6 = ipaddr.IPv6.parse(bare);
  return `6:${v6.toNormalizedString()}`;
}

function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length > 1 && lower.endsWith(".") ? lower.slice(0, -1) : lower;
}
