/**
 * Parser for hosts.allow and hosts.deny, the tcp_wrappers access control
 * tables of hosts_access(5): one rule per logical line,
 * `daemon_list : client_list [: option [: option]...]`, read into a typed
 * tree. Nothing here looks anything up or runs anything; matching is
 * `src/acl/hosts_access.ts`.
 *
 * Lexing follows libwrap (hosts_access.c, options.c): a line ending in a
 * backslash continues on the next one (the backslash and newline are
 * removed); `:` separates fields except inside `[...]`; lists are split at
 * blanks and commas; keywords (`ALL`, `EXCEPT`, `KNOWN`...) and names are
 * compared without regard to case; `a b EXCEPT c EXCEPT d` means
 * "a or b, unless (c unless d)". Patterns are those of hosts_access(5) and
 * of the IPv6-aware libwrap builds: `ALL`, `LOCAL`, `KNOWN`, `UNKNOWN`,
 * `PARANOID`, `.domain` suffixes, `n.n.n.` prefixes, `n.n.n.n/m.m.m.m`,
 * `n.n.n.n/len`, `[v6]`, `[v6]/len`, `*` and `?` wildcards, `/path` pattern
 * files, `user@host` and `daemon@host`. Options are those of
 * hosts_options(5).
 *
 * Every problem is a warning naming `file:line` (the line the rule starts
 * on), as libwrap only ever warns; a warning that ends in "rule skipped"
 * means the rule is left out. Where this differs from libwrap:
 *
 * - `#` starts a comment at the start of a line or after a blank, not only
 *   in the first column, so `ALL: 10.0.0.1  # office` does not add the host
 *   names `#` and `office`;
 * - a last line without a newline is read (libwrap skips it with "missing
 *   newline"), and lines have no length limit;
 * - a malformed pattern (`10.0.0.0/33`, `[fe80::1`, `1.2.3`) skips the whole
 *   rule; libwrap keeps the rule and lets the pattern match nothing, which
 *   silently widens an `EXCEPT` list;
 * - `@netgroup` and the options `spawn` and `twist` are never acted on: the
 *   rule is skipped (libwrap would look up NIS or run a shell command);
 * - an unknown option, a value on `allow`/`deny`, or `allow`/`deny` before
 *   another option skips the rule (libwrap denies the client when the rule
 *   matches); options that only tune the server process (`severity`,
 *   `banners`, `nice`, `umask`, `user`, `group`, `setenv`, `keepalive`,
 *   `linger`, `rfc931`) are ignored with a warning, and an empty option
 *   field (a trailing `:`) too;
 * - host bits set in `n.n.n.n/m.m.m.m` are cleared with a warning (libwrap's
 *   `(addr & mask) == net` never matches such a pattern).
 *
 * @module
 */
import { type IpAddress, parseIp } from "../net/address.ts";
import type { ConfigIssue } from "./config_issue.ts";

/** A pattern matched against a string (a daemon name or a user name); text patterns are lower case. */
export type StringPattern =
  | { readonly kind: "all" }
  | { readonly kind: "known" }
  | { readonly kind: "exact" | "suffix" | "prefix" | "glob"; readonly text: string };

/**
 * A pattern matched against a host, that is its address and, when a pattern
 * needs it, its name. `network` matches `(address & mask) == network` and
 * covers exact addresses, `n.n.n.` prefixes and every `/mask` form; an IPv6
 * network also matches IPv4 clients through their `::ffff:a.b.c.d` form.
 * `address_suffix` is libwrap's reading of an all-numeric `.n.n`: a suffix
 * of the address text. `glob` is matched against the address text and the
 * name. Names and globs are lower case.
 */
export type HostPattern =
  | { readonly kind: "all" | "known" | "unknown" | "local" | "paranoid" }
  | { readonly kind: "network"; readonly family: 4 | 6; readonly network: bigint; readonly mask: bigint }
  | { readonly kind: "address_suffix"; readonly suffix: string }
  | { readonly kind: "name"; readonly match: "exact" | "suffix" | "prefix"; readonly text: string }
  | { readonly kind: "glob"; readonly glob: string }
  | { readonly kind: "file"; readonly path: string };

/** A client list entry: a host, or `user@host`. */
export type ClientPattern =
  | HostPattern
  | { readonly kind: "user"; readonly user: StringPattern; readonly host: HostPattern };

/** A daemon list entry: `daemon`, or `daemon@host` (`host` is matched against the server's address). */
export interface DaemonPattern {
  readonly daemon: StringPattern;
  readonly host: HostPattern | null;
}

/** A list: it matches when one of `patterns` matches and `except` (if any) does not. */
export interface PatternList<P> {
  readonly patterns: readonly P[];
  readonly except: PatternList<P> | null;
}

/**
 * One rule. `option` is the `allow` or `deny` option, which overrides the
 * table's own verdict (grant for hosts.allow, deny for hosts.deny).
 */
export interface HostsRule {
  /** Physical line the rule starts on. */
  readonly line: number;
  readonly daemons: PatternList<DaemonPattern>;
  readonly clients: PatternList<ClientPattern>;
  readonly option: "allow" | "deny" | null;
}

/** The usable rules of one table, in file order, and every warning. */
export interface HostsTable {
  readonly rules: readonly HostsRule[];
  readonly issues: readonly ConfigIssue[];
}

/** The host patterns of a `/path` pattern file, and every warning. */
export interface HostPatternFile {
  readonly patterns: readonly HostPattern[];
  readonly issues: readonly ConfigIssue[];
}

/** Options libwrap would apply to the server process, which srelay ignores. */
const IGNORED_OPTIONS = new Set([
  "severity",
  "banners",
  "nice",
  "umask",
  "user",
  "group",
  "setenv",
  "keepalive",
  "linger",
  "rfc931",
]);
const SHELL_OPTIONS = new Set(["spawn", "twist"]);
const LIST_SEPARATORS = /[\s,]+/;
const NUMERIC = /^[0-9./]+$/;
const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;
const ALL_ONES_V4 = 0xffffffffn;

/** Why a pattern cannot be used; the rule (or pattern file entry) is skipped. */
class PatternProblem {
  constructor(readonly message: string) {}
}

/**
 * Parses a hosts.allow or hosts.deny text. Rules with problems are left
 * out, each problem is a warning on the line its rule starts on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const table = parseHostsTable("# LAN only\nsrelay: 192.168. EXCEPT 192.168.1.9\nALL: .evil.example : deny\n", "hosts.allow");
 * assert.deepEqual(table.rules.map((rule) => [rule.line, rule.option]), [[2, null], [3, "deny"]]);
 * assert.deepEqual(table.issues, []);
 * ```
 */
export function parseHostsTable(text: string, file: string): HostsTable {
  const rules: HostsRule[] = [];
  const issues: ConfigIssue[] = [];
  for (const { line, text: logical } of logicalLines(text)) {
    const warnings: string[] = [];
    const rule = parseRule(logical, line, warnings);
    for (const message of warnings) issues.push({ file, line, severity: "warning", message });
    if (rule !== null) rules.push(rule);
  }
  return { rules, issues };
}

/**
 * Parses a `/path` pattern file: host patterns separated by blanks and
 * newlines, `#` comments. Entries with problems (`@netgroup`, `user@host`,
 * `EXCEPT`, a malformed address) are left out with a warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const file = parseHostPatternFile("10.0.0.0/8 .example.com\n@staff\n", "/etc/srelay.clients");
 * assert.equal(file.patterns.length, 2);
 * assert.equal(file.issues[0]?.line, 2);
 * ```
 */
export function parseHostPatternFile(text: string, file: string): HostPatternFile {
  const patterns: HostPattern[] = [];
  const issues: ConfigIssue[] = [];
  const lines = physicalLines(text);
  for (let index = 0; index < lines.length; index++) {
    const warnings: string[] = [];
    for (const token of tokens(stripComment(lines[index] ?? ""))) {
      const pattern = token.toUpperCase() === "EXCEPT"
        ? new PatternProblem("EXCEPT has no meaning in a pattern file")
        : token.indexOf("@", 1) > 0
        ? new PatternProblem(`'${token}': user@host has no meaning in a pattern file`)
        : parseHostPattern(token, warnings);
      if (pattern instanceof PatternProblem) warnings.push(`${pattern.message}; entry skipped`);
      else patterns.push(pattern);
    }
    for (const message of warnings) issues.push({ file, line: index + 1, severity: "warning", message });
  }
  return { patterns, issues };
}

/** A rule's text once continuation lines are joined and comments removed. */
interface LogicalLine {
  readonly line: number;
  readonly text: string;
}

function physicalLines(text: string): string[] {
  return text.replace(/^\uFEFF/, "").split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
}

function logicalLines(text: string): LogicalLine[] {
  const lines = physicalLines(text);
  const result: LogicalLine[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    let joined = lines[index] ?? "";
    while (joined.endsWith("\\") && index + 1 < lines.length) {
      index++;
      joined = joined.slice(0, -1) + (lines[index] ?? "");
    }
    const content = stripComment(joined);
    if (content.trim() !== "") result.push({ line, text: content });
  }
  return result;
}

/** Removes a comment: from a `#` at the start or after a blank to the end. */
function stripComment(text: string): string {
  const match = /(^|\s)#/.exec(text);
  return match === null ? text : text.slice(0, match.index);
}

function tokens(list: string): string[] {
  return list.split(LIST_SEPARATORS).filter((token) => token !== "");
}

/** Splits at the first `delimiter` outside brackets, as libwrap's split_at does. */
function splitAt(text: string, delimiter: string): [string, string | null] {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (depth === 0 && c === delimiter) return [text.slice(0, i), text.slice(i + 1)];
  }
  return [text, null];
}

function parseRule(text: string, line: number, warnings: string[]): HostsRule | null {
  const [daemonText, rest] = splitAt(text, ":");
  if (rest === null) {
    warnings.push("missing ':' between the daemon list and the client list; rule skipped");
    return null;
  }
  const [clientText, optionText] = splitAt(rest, ":");
  try {
    const daemons = parseList(tokens(daemonText), "daemon", parseDaemonPattern, warnings);
    const clients = parseList(tokens(clientText), "client", parseClientPattern, warnings);
    const option = optionText === null ? null : parseOptions(optionText, warnings);
    return { line, daemons, clients, option };
  } catch (error) {
    if (!(error instanceof PatternProblem)) throw error;
    warnings.push(`${error.message}; rule skipped`);
    return null;
  }
}

/** Parses `a b EXCEPT c ...`; throws `PatternProblem` when the list can never match. */
function parseList<P>(
  list: readonly string[],
  what: string,
  parse: (token: string, warnings: string[]) => P | PatternProblem,
  warnings: string[],
): PatternList<P> {
  const groups: P[][] = [[]];
  for (const token of list) {
    if (token.toUpperCase() === "EXCEPT") {
      groups.push([]);
      continue;
    }
    const pattern = parse(token, warnings);
    if (pattern instanceof PatternProblem) throw pattern;
    groups[groups.length - 1]?.push(pattern);
  }
  if (groups[0]?.length === 0) {
    throw new PatternProblem(
      list.length === 0 ? `empty ${what} list` : `the ${what} list starts with EXCEPT and matches nothing`,
    );
  }
  if (groups.some((group, index) => index > 0 && group.length === 0)) {
    warnings.push(`EXCEPT without patterns after it in the ${what} list excludes nothing`);
  }
  let result: PatternList<P> | null = null;
  for (let index = groups.length - 1; index >= 0; index--) {
    result = { patterns: groups[index] ?? [], except: result };
  }
  return result as PatternList<P>;
}

/**
 * Reads the options field: `allow` and `deny` are kept, shell options skip
 * the rule, options that tune the server process are ignored. Options are
 * separated by unescaped `:`; `\:` is a literal colon.
 */
function parseOptions(text: string, warnings: string[]): "allow" | "deny" | null {
  const fields = text.split(/(?<!\\):/).map((field) => field.replaceAll("\\:", ":").trim());
  let verdict: "allow" | "deny" | null = null;
  for (const field of fields) {
    if (field === "") {
      warnings.push("empty option ignored");
      continue;
    }
    const key = /^[^\s=]*/.exec(field)?.[0] ?? "";
    const name = key.toLowerCase();
    const value = field.slice(key.length).trim().replace(/^=\s*/, "");
    if (name === "") throw new PatternProblem(`option '${field}' has no name`);
    if (SHELL_OPTIONS.has(name)) {
      throw new PatternProblem(`option '${name}' runs a shell command, which srelay never does`);
    }
    if (verdict !== null) throw new PatternProblem(`option '${verdict}' must be the last option`);
    if (name === "allow" || name === "deny") {
      if (value !== "") throw new PatternProblem(`option '${name}' takes no value`);
      verdict = name;
    } else if (IGNORED_OPTIONS.has(name)) {
      warnings.push(`option '${name}' is not supported and is ignored`);
    } else {
      throw new PatternProblem(`unknown option '${name}'`);
    }
  }
  return verdict;
}

function parseDaemonPattern(token: string, warnings: string[]): DaemonPattern | PatternProblem {
  const at = token.indexOf("@", 1);
  if (at < 0) return { daemon: parseStringPattern(token), host: null };
  const host = parseHostPattern(token.slice(at + 1), warnings);
  return host instanceof PatternProblem ? host : { daemon: parseStringPattern(token.slice(0, at)), host };
}

function parseClientPattern(token: string, warnings: string[]): ClientPattern | PatternProblem {
  const at = token.indexOf("@", 1);
  if (at < 0) return parseHostPattern(token, warnings);
  const host = parseHostPattern(token.slice(at + 1), warnings);
  return host instanceof PatternProblem ? host : { kind: "user", user: parseStringPattern(token.slice(0, at)), host };
}

/** libwrap's string_match patterns, in its order of precedence. */
function parseStringPattern(token: string): StringPattern {
  const text = token.toLowerCase();
  if (text.includes("*") || text.includes("?")) return { kind: "glob", text };
  if (text.startsWith(".")) return { kind: "suffix", text };
  if (text === "all") return { kind: "all" };
  if (text === "known") return { kind: "known" };
  if (text.endsWith(".")) return { kind: "prefix", text };
  return { kind: "exact", text };
}

/** libwrap's host_match patterns; all-numeric patterns are addresses, never names. */
function parseHostPattern(token: string, warnings: string[]): HostPattern | PatternProblem {
  const keyword = token.toUpperCase();
  if (token === "") return new PatternProblem("empty host pattern after '@'");
  if (token.startsWith("@")) return new PatternProblem(`'${token}': NIS netgroups are not supported`);
  if (token.startsWith("/")) return { kind: "file", path: token };
  if (keyword === "ALL") return { kind: "all" };
  if (keyword === "KNOWN") return { kind: "known" };
  if (keyword === "UNKNOWN") return { kind: "unknown" };
  if (keyword === "LOCAL") return { kind: "local" };
  if (keyword === "PARANOID") return { kind: "paranoid" };
  if (token.startsWith("[")) return parseBracketed(token);
  const text = token.toLowerCase();
  if (text.includes("*") || text.includes("?")) return { kind: "glob", glob: text };
  if (NUMERIC.test(text)) return parseNumeric(text, warnings);
  if (text.includes("/")) return new PatternProblem(`'${token}' is not n.n.n.n/mask`);
  if (text.startsWith(".")) return { kind: "name", match: "suffix", text };
  if (text.endsWith(".")) return { kind: "name", match: "prefix", text };
  return { kind: "name", match: "exact", text };
}

/** `[v6]`, `[v6]/len` or `[v6/len]`. */
function parseBracketed(token: string): HostPattern | PatternProblem {
  const close = token.indexOf("]");
  const inner = close < 0 ? "" : token.slice(1, close);
  const after = close < 0 ? "" : token.slice(close + 1);
  const [addressText, innerLength] = splitAt(inner, "/");
  const length = after === "" ? innerLength : after.startsWith("/") && innerLength === null ? after.slice(1) : "";
  const address = parseIp(addressText);
  if (close < 0 || address?.family !== 6 || address.zone !== undefined || length === "") {
    return new PatternProblem(`'${token}' is not [IPv6] or [IPv6]/length`);
  }
  const prefix = length === null ? 128 : DECIMAL.test(length) ? Number(length) : 129;
  if (prefix > 128) return new PatternProblem(`'${token}': the prefix length must be 0..128`);
  return network(address, prefixMask(6, prefix));
}

/** `n.n.n.n`, `n.n.n.` (and shorter), `.n.n`, `n.n.n.n/m.m.m.m` or `n.n.n.n/len`. */
function parseNumeric(text: string, warnings: string[]): HostPattern | PatternProblem {
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const address = parseIp(text.slice(0, slash));
    const maskText = text.slice(slash + 1);
    const mask = DECIMAL.test(maskText) && Number(maskText) <= 32
      ? prefixMask(4, Number(maskText))
      : parseIp(maskText)?.value;
    if (address?.family !== 4 || mask === undefined) {
      return new PatternProblem(`'${text}' is not n.n.n.n/m.m.m.m or n.n.n.n/length`);
    }
    if ((address.value & mask) !== address.value) {
      warnings.push(`'${text}' has address bits set outside its mask; they are ignored`);
    }
    return network(address, mask);
  }
  if (text.startsWith(".")) return { kind: "address_suffix", suffix: text };
  if (text.endsWith(".")) {
    const octets = text.slice(0, -1).split(".");
    const address = octets.length <= 3 ? parseIp([...octets, "0", "0", "0"].slice(0, 4).join(".")) : null;
    if (address === null) return new PatternProblem(`'${text}' is not an address prefix like 192.168.`);
    return network(address, prefixMask(4, octets.length * 8));
  }
  const address = parseIp(text);
  if (address === null) return new PatternProblem(`'${text}' is not an IPv4 address`);
  return network(address, ALL_ONES_V4);
}

function prefixMask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32n : 128n;
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** A network pattern; address bits outside the mask are cleared (see the module notes). */
function network(address: IpAddress, mask: bigint): HostPattern {
  return { kind: "network", family: address.family, network: address.value & mask, mask };
}
