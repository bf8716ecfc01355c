/**
 * Parser for srelay.conf, the routing table of srelay(8): one route per
 * line, `dest[/mask] portrange[/T|/U] [host [port[/H|/S|/4|/5]]]...`, with
 * the next hops listed farthest first.
 *
 * The grammar and lexing follow the original (readconf.c) so existing files
 * route the same, including its quirks: after the first token `#` and `;`
 * separate fields and do not start comments, and a pattern `*` matches
 * every destination. Where the original silently misreads a line, the parser
 * keeps the line with a warning or rejects it with an error, always naming
 * the physical line:
 *
 * - a hop other than the last without a numeric port is an error (srelay
 *   read `A B` as host `A`, port 0);
 * - out-of-range, reversed or malformed ports are errors (srelay used
 *   `atoi`, so garbage became 0);
 * - an unbracketed IPv6 destination is read as IPv6 with a warning (srelay
 *   read it as a name suffix that never matches);
 * - IPv6 prefixes get real CIDR semantics (srelay's mask was wrong unless
 *   the prefix was a multiple of 8);
 * - a non-contiguous dotted mask is an error;
 * - an explicit mask of 0 on an address other than `0.0.0.0` or `::`
 *   (`10.0.0.0/0`, `10.0.0.0/`) still matches only that address, as in
 *   srelay, but draws a warning;
 * - `*.corp.com` is the suffix `.corp.com` with a warning (srelay matched
 *   every destination);
 * - a field that follows `#` or `;` draws a warning saying how it is read.
 *
 * Unlike srelay there is no limit on the number of rules, and line numbers
 * count every physical line.
 *
 * @module
 */
import { readConfigFile } from "./read_config_file.ts";
import { formatIp, type IpAddress, ipFamily, maskPrefix, parseIp, toCidr } from "../net/address.ts";
import type { ConfigIssue } from "./config_issue.ts";

/** How srelay talks to a next hop: `socks` tries SOCKS v5, then v4 (`/S`, the default). */
export type HopProtocol = "socks" | "socks5" | "socks4" | "http";

/** One next hop. `host` is a name, an IPv4 address, or an IPv6 address without brackets. */
export interface Hop {
  readonly host: string;
  readonly port: number;
  readonly protocol: HopProtocol;
}

/**
 * What a rule's destination field matches. IP networks are normalised (host
 * bits cleared, IPv6 in RFC 5952 form); `suffix` is lower case, and a
 * leading `.` means subdomains only.
 */
export type DestinationPattern =
  | { readonly kind: "any" }
  | { readonly kind: "ipv4"; readonly network: string; readonly prefix: number }
  | { readonly kind: "ipv6"; readonly network: string; readonly prefix: number }
  | { readonly kind: "suffix"; readonly suffix: string };

/** Which requests a rule applies to: `/T` (all but UDP ASSOCIATE), `/U` (UDP only), or both. */
export type RuleTransport = "tcp" | "udp" | "any";

/** One valid srelay.conf line. `hops` are farthest first, exactly as written; empty means direct. */
export interface RouteRule {
  readonly line: number;
  readonly text: string;
  readonly destination: DestinationPattern;
  readonly ports: { readonly low: number; readonly high: number };
  readonly transport: RuleTransport;
  readonly hops: readonly Hop[];
}

/** The valid rules of a file, in file order, and every problem found in it. */
export interface SrelayConf {
  readonly rules: RouteRule[];
  readonly issues: ConfigIssue[];
}

/** A field after the first one, with the `#` or `;` that preceded it, if any. */
export interface ConfigField {
  readonly text: string;
  readonly after: "#" | ";" | null;
}

/** A line split the srelay way: `null` for a blank or comment line. */
export type ConfigLine = { readonly first: string; readonly rest: readonly ConfigField[] } | null;

/** Port a last hop without a port gets. */
export const DEFAULT_HOP_PORT = 1080;

const FIRST_DELIMITERS = " \t,\r\n";
const LATER_DELIMITERS = " \t,;#\r\n";
const MAX_PORT = 65535;
const MAX_NAME_LENGTH = 255;
const IPV4_ONLY_CHARS = /^[0-9.]*$/;
const DIGITS = /^[0-9]+$/;

/**
 * Splits one line as srelay.conf and srelay.passwd do: the first field ends
 * at SP, TAB, `,`, CR or LF; later fields also end at `;` and `#`, which only
 * separate (there is no end-of-line comment). A line whose first field is
 * missing or starts with `#` or `;` is a comment (`null`).
 */
export function splitConfigLine(line: string): ConfigLine {
  let i = 0;
  while (i < line.length && FIRST_DELIMITERS.includes(line.charAt(i))) i++;
  const firstStart = i;
  while (i < line.length && !FIRST_DELIMITERS.includes(line.charAt(i))) i++;
  const first = line.slice(firstStart, i);
  if (first === "" || first.startsWith("#") || first.startsWith(";")) return null;
  i++;
  const rest: ConfigField[] = [];
  while (i < line.length) {
    let after: "#" | ";" | null = null;
    while (i < line.length && LATER_DELIMITERS.includes(line.charAt(i))) {
      const c = line.charAt(i);
      if (after === null && (c === "#" || c === ";")) after = c;
      i++;
    }
    const start = i;
    while (i < line.length && !LATER_DELIMITERS.includes(line.charAt(i))) i++;
    if (i > start) rest.push({ text: line.slice(start, i), after });
  }
  return { first, rest };
}

/** One non-comment line of a srelay.conf or srelay.passwd text. */
export interface ConfigTextLine {
  /** Physical line number, from 1. */
  readonly line: number;
  readonly raw: string;
  readonly fields: NonNullable<ConfigLine>;
}

/** The non-comment lines of srelay.conf or srelay.passwd text (a leading BOM is ignored). */
export function configLines(text: string): ConfigTextLine[] {
  const result: ConfigTextLine[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index] ?? "";
    const fields = splitConfigLine(raw);
    if (fields !== null) result.push({ line: index + 1, raw, fields });
  }
  return result;
}

/**
 * Parses srelay.conf text. Every problem is reported, each with its physical
 * line; lines with errors are left out of `rules`, lines with only warnings
 * are kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const { rules, issues } = parseSrelayConf("10.1.1.0/25 any 100.100.100.100 1111 fw2 1080\n", "srelay.conf");
 * assert.deepEqual(issues, []);
 * assert.deepEqual(rules[0]?.destination, { kind: "ipv4", network: "10.1.1.0", prefix: 25 });
 * assert.deepEqual(rules[0]?.hops, [
 *   { host: "100.100.100.100", port: 1111, protocol: "socks" },
 *   { host: "fw2", port: 1080, protocol: "socks" },
 * ]);
 * ```
 */
export function parseSrelayConf(text: string, file: string): SrelayConf {
  const rules: RouteRule[] = [];
  const issues: ConfigIssue[] = [];
  for (const { line, raw, fields } of configLines(text)) {
    const problems: Problem[] = [];
    const rule = parseRule(fields, raw.trim(), line, problems);
    for (const problem of problems) issues.push({ file, line, ...problem });
    if (rule !== null && !problems.some((p) => p.severity === "error")) rules.push(rule);
  }
  return { rules, issues };
}

/**
 * Reads and parses a srelay.conf file. A file that cannot be read yields no
 * rules and one error on line 0; whether that matters (for example for the
 * default path) is the caller's decision.
 */
export function loadSrelayConf(path: string): SrelayConf {
  const read = readConfigFile(path, "config file");
  return "issue" in read ? { rules: [], issues: [read.issue] } : parseSrelayConf(read.text, path);
}

interface Problem {
  readonly severity: "error" | "warning";
  readonly message: string;
}

function error(problems: Problem[], message: string): void {
  problems.push({ severity: "error", message });
}

function warning(problems: Problem[], message: string): void {
  problems.push({ severity: "warning", message });
}

function noteSeparator(field: ConfigField, role: string, problems: Problem[]): void {
  if (field.after !== null) {
    warning(problems, `'${field.after}' separates fields here; '${field.text}' is read as ${role}`);
  }
}

function parseRule(split: NonNullable<ConfigLine>, text: string, line: number, problems: Problem[]): RouteRule | null {
  const destination = parseDestination(split.first, problems);
  const portField = split.rest[0];
  if (portField === undefined) {
    error(problems, `destination port missing after '${split.first}'`);
    return null;
  }
  noteSeparator(portField, "the destination port", problems);
  const portSpec = parsePortSpec(portField.text, problems);
  const hops = parseHops(split.rest.slice(1), problems);
  if (destination === null || portSpec === null || hops === null) return null;
  return { line, text, destination, ports: portSpec.ports, transport: portSpec.transport, hops };
}

// ---- destination ------------------------------------------------------------

function parseDestination(token: string, problems: Problem[]): DestinationPattern | null {
  const slash = token.indexOf("/");
  let address = slash < 0 ? token : token.slice(0, slash);
  let mask = slash < 0 ? undefined : token.slice(slash + 1);
  if (address === "") {
    error(problems, `destination address missing in '${token}'`);
    return null;
  }
  if (address.startsWith("[")) {
    address = address.slice(1);
    if (address.endsWith("]")) address = address.slice(0, -1);
    else if (mask?.endsWith("]")) mask = mask.slice(0, -1);
    const ip = parseIp(address);
    if (ip?.family !== 6) {
      error(problems, `invalid IPv6 address '${address}' in destination '${token}'`);
      return null;
    }
    return ipDestination(ip, mask, token, problems);
  }
  if (address.includes(":")) {
    const ip = parseIp(address);
    if (ip?.family !== 6) {
      error(problems, `invalid destination '${token}': not an IPv6 address, and a name cannot contain ':'`);
      return null;
    }
    warning(
      problems,
      `unbracketed IPv6 destination '${address}' is read as IPv6 (srelay read it as a name suffix that never matches); write [${address}]`,
    );
    return ipDestination(ip, mask, token, problems);
  }
  if (IPV4_ONLY_CHARS.test(address)) {
    const ip = parseIp(address);
    if (ip === null) {
      error(problems, `invalid IPv4 address '${address}' in destination '${token}'`);
      return null;
    }
    return ipDestination(ip, mask, token, problems);
  }
  return nameDestination(address, mask, problems);
}

/** The IPv4 or IPv6 network of a destination; `0.0.0.0` and `::` are wildcards, as in srelay. */
function ipDestination(
  address: IpAddress,
  mask: string | undefined,
  token: string,
  problems: Problem[],
): DestinationPattern | null {
  const kind = address.family === 4 ? "ipv4" : "ipv6";
  const width = address.family === 4 ? 32 : 128;
  if (address.zone !== undefined) {
    error(problems, `zone index in destination '${token}' is not supported`);
    return null;
  }
  const prefix = mask === undefined ? width : parseMask(mask, width, token, problems);
  if (prefix === null) return null;
  const canonical = formatIp(address);
  if (address.value === 0n) {
    if (mask !== undefined && prefix !== 0) {
      warning(
        problems,
        `'${token}' matches every IPv${address.family} address: ${canonical} is a wildcard whatever the mask, as in srelay`,
      );
    }
    return { kind, network: canonical, prefix: 0 };
  }
  if (mask !== undefined && prefix === 0) {
    const wildcard = address.family === 4 ? "0.0.0.0" : "[::]";
    warning(
      problems,
      `mask '/${mask}' in '${token}' matches only ${canonical}, as in srelay; write ${wildcard} to match every IPv${address.family} address`,
    );
    return { kind, network: canonical, prefix: width };
  }
  return { kind, network: formatIp(toCidr(address, prefix).network), prefix };
}

function parseMask(mask: string, width: 32 | 128, token: string, problems: Problem[]): number | null {
  if (mask === "") return 0;
  if (mask.includes(".")) {
    if (width === 128) {
      error(problems, `dotted mask '${mask}' in '${token}' is only valid for IPv4`);
      return null;
    }
    const bits = parseIp(mask);
    if (bits?.family !== 4) {
      error(problems, `invalid mask '${mask}' in '${token}'`);
      return null;
    }
    const prefix = maskPrefix(bits);
    if (prefix === null) error(problems, `non-contiguous mask '${mask}' in '${token}'`);
    return prefix;
  }
  if (!DIGITS.test(mask)) {
    error(problems, `invalid mask '${mask}' in '${token}'`);
    return null;
  }
  const prefix = Number(mask);
  if (prefix > width) {
    error(problems, `mask /${mask} in '${token}' is out of range for ${width === 32 ? "IPv4 (0-32)" : "IPv6 (0-128)"}`);
    return null;
  }
  return prefix;
}

function nameDestination(address: string, mask: string | undefined, problems: Problem[]): DestinationPattern | null {
  if (mask !== undefined) warning(problems, `mask '/${mask}' is ignored on the name pattern '${address}'`);
  if (address.length > MAX_NAME_LENGTH) {
    error(problems, `name pattern '${address}' is longer than ${MAX_NAME_LENGTH} characters`);
    return null;
  }
  let suffix = address.toLowerCase();
  if (suffix.startsWith("*")) {
    suffix = suffix.replace(/^\*+/, "");
    if (suffix === "") return { kind: "any" };
    warning(
      problems,
      `'${address}' is read as the suffix '${suffix}' (srelay read any pattern starting with '*' as match-all); write * to match every destination`,
    );
  }
  if (suffix.includes("*")) {
    warning(problems, `'*' is a wildcard only at the start of a pattern; '${address}' is matched literally`);
  }
  if (suffix.length > 1 && suffix.endsWith(".")) suffix = suffix.slice(0, -1);
  return { kind: "suffix", suffix };
}

// ---- destination port -------------------------------------------------------

interface PortSpec {
  readonly ports: { readonly low: number; readonly high: number };
  readonly transport: RuleTransport;
}

function parsePortSpec(token: string, problems: Problem[]): PortSpec | null {
  const slash = token.indexOf("/");
  const range = slash < 0 ? token : token.slice(0, slash);
  const transport = slash < 0 ? "any" : parseTransport(token.slice(slash + 1), problems);
  if (range === "") {
    error(problems, `port missing in '${token}'`);
    return null;
  }
  let low: number | null;
  let high: number | null;
  const dash = range.indexOf("-");
  if (dash >= 0) {
    const lowText = range.slice(0, dash);
    const highText = range.slice(dash + 1);
    low = lowText === "" ? 0 : parsePort(lowText, token, problems);
    high = highText === "" ? MAX_PORT : parsePort(highText, token, problems);
  } else if (range.slice(0, 3).toLowerCase() === "any") {
    if (range.length > 3) warning(problems, `port '${range}' is read as 'any'`);
    low = 0;
    high = MAX_PORT;
  } else {
    low = parsePort(range, token, problems);
    high = low;
  }
  if (low === null || high === null) return null;
  if (low > high) {
    error(problems, `invalid port range '${token}': ${low} is greater than ${high}`);
    return null;
  }
  return { ports: { low, high }, transport };
}

function parsePort(text: string, token: string, problems: Problem[]): number | null {
  const where = text === token ? "" : ` in '${token}'`;
  if (!DIGITS.test(text)) {
    error(problems, `invalid port '${text}'${where}`);
    return null;
  }
  const port = Number(text);
  if (port > MAX_PORT) {
    error(problems, `port ${text}${where} is out of range (0-${MAX_PORT})`);
    return null;
  }
  return port;
}

function parseTransport(suffix: string, problems: Problem[]): RuleTransport {
  const upper = suffix.toUpperCase();
  if (upper === "") return "any";
  if (upper === "T" || upper === "TCP") return "tcp";
  if (upper === "U" || upper === "UDP") return "udp";
  if (upper.startsWith("T")) {
    warning(problems, `transport suffix '/${suffix}' is read as '/T' (TCP only)`);
    return "tcp";
  }
  if (upper.startsWith("U")) {
    warning(problems, `transport suffix '/${suffix}' is read as '/U' (UDP only)`);
    return "udp";
  }
  warning(problems, `unknown transport suffix '/${suffix}': the rule applies to TCP and UDP`);
  return "any";
}

// ---- next hops --------------------------------------------------------------

function parseHops(fields: readonly ConfigField[], problems: Problem[]): Hop[] | null {
  const hops: Hop[] = [];
  let ok = true;
  let i = 0;
  while (i < fields.length) {
    const hostField = fields[i] as ConfigField;
    noteSeparator(hostField, "a next-hop host", problems);
    const host = parseHopHost(hostField.text, problems);
    if (host === null) ok = false;
    const portField = fields[i + 1];
    if (portField === undefined) {
      if (host !== null) hops.push({ host, port: DEFAULT_HOP_PORT, protocol: "socks" });
      break;
    }
    const slash = portField.text.indexOf("/");
    const portText = slash < 0 ? portField.text : portField.text.slice(0, slash);
    if (!looksLikePort(portText)) {
      error(problems, `hop '${hostField.text}' needs a port: only the last hop may omit it`);
      ok = false;
      i += 1;
      continue;
    }
    noteSeparator(portField, "a next-hop port", problems);
    const port = parseHopPort(portText, hostField.text, problems);
    const protocol = slash < 0 ? "socks" : parseHopProtocol(portField.text.slice(slash + 1), problems);
    if (host === null || port === null) ok = false;
    else hops.push({ host, port, protocol });
    i += 2;
  }
  return ok ? hops : null;
}

function looksLikePort(text: string): boolean {
  return /^[-+0-9]/.test(text) && !text.includes(".");
}

function parseHopHost(text: string, problems: Problem[]): string | null {
  if (text.startsWith("[")) {
    const inner = text.endsWith("]") ? text.slice(1, -1) : "";
    if (ipFamily(inner) !== 6) {
      error(problems, `invalid IPv6 address '${text}' for next hop`);
      return null;
    }
    return inner;
  }
  if (text.includes(":")) {
    if (ipFamily(text) !== 6) {
      error(problems, `invalid next-hop host '${text}': write the port as a separate field, and IPv6 as [address]`);
      return null;
    }
    return text;
  }
  if (IPV4_ONLY_CHARS.test(text)) {
    if (ipFamily(text) !== 4) {
      error(problems, `invalid IPv4 address '${text}' for next hop`);
      return null;
    }
    return text;
  }
  if (text.length > MAX_NAME_LENGTH) {
    error(problems, `next-hop host '${text}' is longer than ${MAX_NAME_LENGTH} characters`);
    return null;
  }
  return text;
}

function parseHopPort(text: string, host: string, problems: Problem[]): number | null {
  const port = DIGITS.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= MAX_PORT)) {
    error(problems, `invalid port '${text}' for hop '${host}': must be 1-${MAX_PORT}`);
    return null;
  }
  return port;
}

const HOP_PROTOCOLS: Readonly<Record<string, HopProtocol>> = {
  H: "http",
  HTTP: "http",
  S: "socks",
  SOCKS: "socks",
  "4": "socks4",
  "5": "socks5",
};

function parseHopProtocol(suffix: string, problems: Problem[]): HopProtocol {
  const upper = suffix.toUpperCase();
  if (upper === "") return "socks";
  const exact = HOP_PROTOCOLS[upper];
  if (exact !== undefined) return exact;
  const first = HOP_PROTOCOLS[upper.charAt(0)];
  if (first !== undefined) {
    warning(problems, `hop protocol suffix '/${suffix}' is read as '/${upper.charAt(0)}' (${describeProtocol(first)})`);
    return first;
  }
  warning(problems, `unknown hop protocol suffix '/${suffix}' is read as '/S' (${describeProtocol("socks")})`);
  return "socks";
}

function describeProtocol(protocol: HopProtocol): string {
  switch (protocol) {
    case "http":
      return "HTTP CONNECT";
    case "socks4":
      return "SOCKS v4 only";
    case "socks5":
      return "SOCKS v5 only";
    case "socks":
      return "SOCKS v5, then v4";
  }
}
