/**
 * Destination rules (`--rules FILE`): which requests srelay relays. One rule
 * per line, first match wins, no match means pass:
 *
 *     ACTION [from CLIENT] [to DEST] [port P|P-Q] [command connect,bind,udp] [user NAME,...]
 *
 * ACTION is `pass` or `block`. CLIENT and DEST are an address (`192.0.2.1`,
 * `[2001:db8::1]`), a subnet (`10.0.0.0/8`, `10.0.0.0/255.0.0.0`,
 * `[fd00::]/8`), a host name (`example.com`, exactly that name) or a domain
 * (`.example.com`: example.com and every name under it, on a dot boundary).
 * Clauses may come in any order, each at most once; keywords are not case
 * sensitive, and blanks around the commas of a list are allowed. `#` starts
 * a comment.
 *
 * Any error rejects the whole file (the caller keeps the rules in force);
 * warnings (host bits set in a subnet, rules that can never be reached)
 * keep it. IPv4-mapped subnets (`[::ffff:10.0.0.0]/104`) are read as IPv4,
 * since addresses are compared in their IPv4 form.
 *
 * @module
 */
import { readConfigFile } from "./read_config_file.ts";
import { type Cidr, formatIp, maskPrefix, parseCidr, parseIp, unmapIPv4 } from "../net/address.ts";
import type { Command } from "../server/request.ts";
import type { ConfigIssue } from "./config_issue.ts";

/** What a matching rule does. */
export type RuleAction = "pass" | "block";

/**
 * A client or destination pattern. `name` is one host name; `domain`
 * matches that name and every name under it. Names are lower case, without
 * a final dot.
 */
export type RuleAddress =
  | { readonly kind: "subnet"; readonly cidr: Cidr }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "domain"; readonly domain: string };

/** One rule; `null` clauses were not given and match everything. */
export interface DestinationRule {
  readonly file: string;
  /** Physical line number, from 1. */
  readonly line: number;
  readonly action: RuleAction;
  readonly from: RuleAddress | null;
  readonly to: RuleAddress | null;
  readonly ports: { readonly low: number; readonly high: number } | null;
  readonly commands: readonly Command[] | null;
  readonly users: readonly string[] | null;
}

/** A parsed rules file: usable (with warnings, if any) or rejected (with at least one error). */
export type RulesFile =
  | { readonly ok: true; readonly rules: readonly DestinationRule[]; readonly issues: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

const ACTIONS: ReadonlySet<string> = new Set<RuleAction>(["pass", "block"]);
const COMMANDS: ReadonlySet<string> = new Set<Command>(["connect", "bind", "udp"]);
const KEYWORDS = ["from", "to", "port", "command", "user"] as const;
type Keyword = typeof KEYWORDS[number];
const RESERVED: ReadonlySet<string> = new Set([...KEYWORDS, ...ACTIONS]);
const PORTS = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/;
const MAX_PORT = 65535;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const MAX_NAME_LENGTH = 253;
const NUMERIC = /^[0-9.]+$/;
const MAPPED_BITS = 96;

/**
 * Parses a rules file. The result is rejected when any line has an error;
 * each issue names `file:line`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const parsed = parseRules("# no mail\nblock to .example.com port 25\npass from 10.0.0.0/8\nblock\n", "rules");
 * assert.ok(parsed.ok);
 * assert.deepEqual(parsed.rules.map((rule) => [rule.line, rule.action]), [[2, "block"], [3, "pass"], [4, "block"]]);
 * assert.equal(parseRules("allow to x\n", "rules").ok, false);
 * ```
 */
export function parseRules(text: string, file: string): RulesFile {
  const rules: DestinationRule[] = [];
  const issues: ConfigIssue[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  let catchAll: DestinationRule | null = null;
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    // Blanks around commas are dropped by splitting and trimming (a /\s*,\s*/ replace is quadratic on long blank runs).
    const text = (lines[index] ?? "").replace(/#.*/, "").split(",").map((part) => part.trim()).join(",");
    const words = text.split(/\s+/).filter(Boolean);
    if (words.length === 0) continue;
    const problems: Array<Omit<ConfigIssue, "file" | "line">> = [];
    const rule = parseRule(words, file, line, problems);
    if (rule !== null && catchAll !== null && rules.at(-1) === catchAll) {
      problems.push({
        severity: "warning",
        message: `this rule and the ones after it are never reached: line ${catchAll.line} matches every request`,
      });
    }
    issues.push(...problems.map((problem) => ({ file, line, ...problem })));
    if (rule === null) continue;
    rules.push(rule);
    if (catchAll === null && isCatchAll(rule)) catchAll = rule;
  }
  return issues.some((issue) => issue.severity === "error") ? { ok: false, issues } : { ok: true, rules, issues };
}

/**
 * Reads and parses a rules file; a file that cannot be read is rejected
 * with an error on line 0.
 */
export function loadRules(path: string): RulesFile {
  const read = readConfigFile(path, "rules file");
  return "issue" in read ? { ok: false, issues: [read.issue] } : parseRules(read.text, path);
}

/**
 * Formats a rule in the rules grammar, clauses in canonical order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const parsed = parseRules("Block user bob , alice  to [FD00::1]/8 command udp,connect PORT 80-90\n", "rules");
 * assert.ok(parsed.ok);
 * assert.equal(formatRule(parsed.rules[0]!), "block to [fd00::]/8 port 80-90 command connect,udp user bob,alice");
 * ```
 */
export function formatRule(rule: DestinationRule): string {
  const words: string[] = [rule.action];
  if (rule.from !== null) words.push("from", formatAddress(rule.from));
  if (rule.to !== null) words.push("to", formatAddress(rule.to));
  if (rule.ports !== null) {
    const { low, high } = rule.ports;
    words.push("port", low === high ? String(low) : `${low}-${high}`);
  }
  if (rule.commands !== null) words.push("command", rule.commands.join(","));
  if (rule.users !== null) words.push("user", rule.users.join(","));
  return words.join(" ");
}

/**
 * The effective rules for `--check-config`: `file:line`, action and the
 * rest of the rule in canonical form, one per line in match order, then
 * what happens when none matches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const parsed = parseRules("pass from 10.0.0.0/8 to 10.1.0.0/16\n\n\n\n\n\n\n\n\nblock\n", "r");
 * assert.ok(parsed.ok);
 * assert.equal(formatRules(parsed.rules), "r:1         pass   from 10.0.0.0/8 to 10.1.0.0/16\nr:10        block\n(no match)  pass");
 * ```
 */
export function formatRules(rules: readonly DestinationRule[]): string {
  const rows = [
    ...rules.map((rule) => [`${rule.file}:${rule.line}`, ...splitFirst(formatRule(rule))]),
    ["(no match)", "pass", ""],
  ];
  const width = Math.max(...rows.map((row) => row[0]?.length ?? 0));
  return rows.map(([where = "", action = "", rest = ""]) =>
    `${where.padEnd(width)}  ${rest === "" ? action : `${action.padEnd(5)}  ${rest}`}`
  ).join("\n");
}

/** Formats a pattern as the grammar writes it; IPv6 is bracketed, a single address has no length. */
export function formatAddress(address: RuleAddress): string {
  switch (address.kind) {
    case "name":
      return address.name;
    case "domain":
      return `.${address.domain}`;
    case "subnet": {
      const { network, prefix } = address.cidr;
      const text = network.family === 6 ? `[${formatIp(network)}]` : formatIp(network);
      return prefix === (network.family === 4 ? 32 : 128) ? text : `${text}/${prefix}`;
    }
  }
}

function splitFirst(text: string): [string, string] {
  const space = text.indexOf(" ");
  return space < 0 ? [text, ""] : [text.slice(0, space), text.slice(space + 1)];
}

function isCatchAll(rule: DestinationRule): boolean {
  return rule.from === null && rule.to === null && rule.ports === null && rule.commands === null &&
    rule.users === null;
}

type Problems = Array<Omit<ConfigIssue, "file" | "line">>;

function parseRule(words: readonly string[], file: string, line: number, problems: Problems): DestinationRule | null {
  const action = (words[0] ?? "").toLowerCase();
  if (!ACTIONS.has(action)) {
    problems.push({ severity: "error", message: `unknown action '${words[0]}' (expected pass or block)` });
    return null;
  }
  const clauses = new Map<Keyword, string>();
  for (let i = 1; i < words.length; i += 2) {
    const word = words[i] ?? "";
    const keyword = KEYWORDS.find((k) => k === word.toLowerCase());
    const value = words[i + 1];
    if (keyword === undefined) {
      problems.push({ severity: "error", message: `unexpected '${word}' (expected ${KEYWORDS.join(", ")})` });
      return null;
    }
    if (clauses.has(keyword)) {
      problems.push({ severity: "error", message: `'${keyword}' is given twice` });
      return null;
    }
    if (value === undefined || RESERVED.has(value.toLowerCase())) {
      problems.push({ severity: "error", message: `'${keyword}' needs a value` });
      return null;
    }
    clauses.set(keyword, value);
  }
  const errors = problems.length;
  const clause = <T>(keyword: Keyword, parse: (value: string, problems: Problems) => T | null): T | null => {
    const value = clauses.get(keyword);
    return value === undefined ? null : parse(value, problems);
  };
  const rule: DestinationRule = {
    file,
    line,
    action: action as RuleAction,
    from: clause("from", parseAddress),
    to: clause("to", parseAddress),
    ports: clause("port", parsePorts),
    commands: clause("command", parseCommands),
    users: clause("user", parseUsers),
  };
  return problems.slice(errors).some((problem) => problem.severity === "error") ? null : rule;
}

function parseAddress(text: string, problems: Problems): RuleAddress | null {
  const lower = text.toLowerCase();
  if (lower.startsWith(".")) {
    const domain = hostName(lower.slice(1));
    if (domain === null) problems.push({ severity: "error", message: `invalid domain '${text}'` });
    return domain === null ? null : { kind: "domain", domain };
  }
  if (lower.includes("*")) {
    problems.push({ severity: "error", message: `invalid pattern '${text}': write a domain as .example.com` });
    return null;
  }
  if (lower.includes(":") || lower.includes("/") || lower.startsWith("[") || NUMERIC.test(lower)) {
    const cidr = parseSubnet(lower, problems);
    if (cidr === null) problems.push({ severity: "error", message: `invalid address or subnet '${text}'` });
    return cidr === null ? null : { kind: "subnet", cidr };
  }
  const name = hostName(lower);
  if (name === null) problems.push({ severity: "error", message: `invalid host name '${text}'` });
  return name === null ? null : { kind: "name", name };
}

/** A host name in lower case without its final dot, or `null` when it is not one. */
function hostName(text: string): string | null {
  const name = text.endsWith(".") ? text.slice(0, -1) : text;
  const labels = name.split(".");
  const valid = name.length > 0 && name.length <= MAX_NAME_LENGTH && labels.every((label) => LABEL.test(label)) &&
    !NUMERIC.test(name);
  return valid ? name : null;
}

/** `address`, `address/len` or `address/dotted.mask`, IPv6 optionally bracketed; mapped IPv6 becomes IPv4. */
function parseSubnet(text: string, problems: Problems): Cidr | null {
  const slash = text.lastIndexOf("/");
  const mask = slash < 0 ? null : parseIp(text.slice(slash + 1));
  const length = mask === null ? null : mask.family === 4 ? maskPrefix(mask) : null;
  if (mask !== null && length === null) return null;
  const cidr = parseCidr(length === null ? text : `${text.slice(0, slash)}/${length}`);
  if (cidr === null || (length !== null && cidr.network.family !== 4)) return null;
  const host = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(host.startsWith("[") ? host.slice(1, -1) : host);
  if (address !== null && address.value !== cidr.network.value) {
    problems.push({
      severity: "warning",
      message: `'${text}' has host bits set; it is read as ${formatIp(cidr.network)}/${cidr.prefix}`,
    });
  }
  const mapped = unmapIPv4(cidr.network);
  return mapped.family === 4 && cidr.network.family === 6 && cidr.prefix >= MAPPED_BITS
    ? { network: mapped, prefix: cidr.prefix - MAPPED_BITS }
    : cidr;
}

function parsePorts(text: string, problems: Problems): { low: number; high: number } | null {
  const match = PORTS.exec(text);
  const low = Number(match?.[1]);
  const high = match?.[2] === undefined ? low : Number(match[2]);
  if (match === null || high > MAX_PORT || low > high) {
    problems.push({ severity: "error", message: `invalid port '${text}' (expected P or P-Q, 0..65535)` });
    return null;
  }
  return { low, high };
}

function parseCommands(text: string, problems: Problems): Command[] | null {
  const commands = text.toLowerCase().split(",");
  const unknown = commands.find((command) => !COMMANDS.has(command));
  if (unknown !== undefined) {
    problems.push({ severity: "error", message: `unknown command '${unknown}' (expected connect, bind or udp)` });
    return null;
  }
  return [...COMMANDS].filter((command) => commands.includes(command)) as Command[];
}

function parseUsers(text: string, problems: Problems): string[] | null {
  const users = text.split(",");
  if (users.includes("")) {
    problems.push({ severity: "error", message: `empty user name in '${text}'` });
    return null;
  }
  return [...new Set(users)];
}
