/**
 * tcp_wrappers access control (`-w`): hosts_access(5) semantics over
 * hosts.allow and hosts.deny, for daemon name `srelay`. A match in
 * hosts.allow grants, else a match in hosts.deny denies, else the client is
 * granted; an `allow` or `deny` option overrides the table's verdict.
 *
 * Loading: both tables, and every `/path` pattern file they name, are read
 * and compiled once. Each check looks at the files' stamps (mtime, ctime,
 * size, inode) at most once per second and reloads everything when one of
 * them changed, so a pattern file is cached like the tables (libwrap reads
 * it at every match). A missing table has no rules. An unreadable
 * hosts.allow counts as empty; an unreadable hosts.deny denies every
 * client, as libwrap does (its `table_match` returns an error, which denies).
 *
 * Matching is cheap per connection: daemon lists are decided at load time
 * (only `daemon@host` remains, matched against the address the client
 * reached, whose name is never looked up); rules whose client list is only
 * `ALL` and address prefixes go into per-prefix-length hash tables, and the
 * remaining rules are tried in file order only up to the first hit there.
 * Nothing is awaited unless a rule that needs the client's name is reached.
 *
 * Names: with a `clientName` lookup (srelay's `-r`), the name is looked up
 * when a pattern needs it, as libwrap does, and a name whose forward lookup
 * does not give the address back is PARANOID. Without one the name is
 * unknown: name patterns, `KNOWN` and `LOCAL` never match, `UNKNOWN`
 * matches every client. The user is always unknown (srelay makes no ident
 * lookups), so `user@host` matches only for the users `ALL` and `UNKNOWN`.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import type { ConfigIssue } from "../config/config_issue.ts";
import {
  type ClientPattern,
  type DaemonPattern,
  type HostPattern,
  type HostsRule,
  parseHostPatternFile,
  parseHostsTable,
  type PatternList,
  type StringPattern,
} from "../config/hosts_access.ts";
import { formatIp, type IpAddress, parseHost } from "../net/address.ts";
import type { Resolver } from "../runtime/resolver.ts";
import type { ReverseLookup } from "../runtime/reverse_lookup.ts";
import type { AdmitDecision, Admitter, ClientInfo } from "../server/admit.ts";

/** A client's host name as tcp_wrappers sees it: verified, unknown, or failing its forward check. */
export type ClientName = { readonly name: string } | "unknown" | "paranoid";

/** Looks up the name of a client address; never rejects. */
export type ClientNameLookup = (address: string) => Promise<ClientName>;

/** The rule that decided, by file and physical line. */
export interface RuleRef {
  readonly file: string;
  readonly line: number;
}

/** The answer for one client: `rule` is null when no rule matched (and the client is granted). */
export type AccessVerdict =
  | { readonly granted: true; readonly rule: RuleRef | null }
  | { readonly granted: false; readonly rule: RuleRef };

/** How tables are read: a stamp that changes with the file (or its absence), and its text. */
export interface TableFiles {
  stamp(path: string): string;
  /** The file's text; throws an error with `code: "ENOENT"` when it does not exist. */
  read(path: string): string;
}

/** Options of `openHostsAccess`. */
export interface HostsAccessOptions {
  /** Default `/etc/hosts.allow`. */
  readonly allowFile?: string;
  /** Default `/etc/hosts.deny`. */
  readonly denyFile?: string;
  /** Daemon name the daemon lists are matched against (default `srelay`). */
  readonly daemon?: string;
  /** Client name lookup (srelay's `-r`); without it the name is unknown. */
  readonly clientName?: ClientNameLookup;
  /** Called with the new load's issues after the files changed and were read again. */
  readonly onReload?: (issues: readonly ConfigIssue[]) => void;
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
  /** File access (default node:fs). */
  readonly files?: TableFiles;
}

/** The loaded tables. */
export interface HostsAccess {
  /** Warnings of the load in force, as `file:line` issues. */
  readonly issues: readonly ConfigIssue[];
  /** True when some rule in force needs the client's name (name patterns, KNOWN, LOCAL, UNKNOWN, PARANOID). */
  readonly usesNames: boolean;
  /** Decides on a client; returns a promise only when the client's name has to be looked up. */
  check(client: ClientInfo): AccessVerdict | Promise<AccessVerdict>;
}

/** Default table paths. */
export const HOSTS_ALLOW = "/etc/hosts.allow";
export const HOSTS_DENY = "/etc/hosts.deny";

/** How often, at most, the files' stamps are looked at. */
const STAMP_INTERVAL_MS = 1000;
/** Deepest chain of pattern files naming pattern files. */
const MAX_FILE_DEPTH = 8;
/** What the user is matched against: srelay makes no ident (RFC 931) lookups. */
const UNKNOWN_USER = "unknown";
const NO_MATCH: AccessVerdict = { granted: true, rule: null };

/**
 * Reads the tables and returns the access check. Reading happens here (so
 * start-up can report `issues`) and again after a change.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const tables: Record<string, string> = {
 *   "/etc/hosts.allow": "srelay: 10.0.0.0/8 EXCEPT 10.9.0.0/16\n",
 *   "/etc/hosts.deny": "ALL: ALL\n",
 * };
 * const files = { stamp: (path: string) => tables[path] ?? "", read: (path: string) => tables[path] ?? "" };
 * const access = openHostsAccess({ files });
 * const client = (host: string) => ({
 *   address: { host, port: 40000, family: 4 as const },
 *   local: { host: "10.0.0.1", port: 1080, family: 4 as const },
 * });
 * assert.deepEqual(access.check(client("10.1.2.3")), { granted: true, rule: { file: "/etc/hosts.allow", line: 1 } });
 * assert.deepEqual(access.check(client("10.9.0.1")), { granted: false, rule: { file: "/etc/hosts.deny", line: 1 } });
 * ```
 */
export function openHostsAccess(options: HostsAccessOptions = {}): HostsAccess {
  const now = options.now ?? Date.now;
  const files = options.files ?? NODE_FILES;
  const lookup = options.clientName;
  const load = () =>
    loadTables(
      options.allowFile ?? HOSTS_ALLOW,
      options.denyFile ?? HOSTS_DENY,
      (options.daemon ?? "srelay").toLowerCase(),
      files,
    );
  let tables = load();
  let stampedAt = now();

  function refresh(): void {
    const time = now();
    if (time - stampedAt < STAMP_INTERVAL_MS && time >= stampedAt) return;
    stampedAt = time;
    for (const [path, stamp] of tables.stamps) {
      if (files.stamp(path) !== stamp) {
        tables = load();
        options.onReload?.(tables.issues);
        return;
      }
    }
  }

  return {
    get issues() {
      return tables.issues;
    },
    get usesNames() {
      return tables.usesNames;
    },
    check(client) {
      refresh();
      const current = tables;
      // Without a lookup the name is known to be unknown, so `decide` never asks for it.
      const host = new Host(client.address.host, lookup === undefined ? "unknown" : undefined);
      const decided = current.decide(host, client.local.host);
      if (decided !== undefined || lookup === undefined) return current.verdict(decided ?? Infinity);
      return lookup(host.text).then((name) => {
        host.name = name;
        return current.verdict(current.decide(host, client.local.host) ?? Infinity);
      });
    },
  };
}

/**
 * The admit stage's tcp_wrappers check: a denied client is refused with
 * outcome `denied_by_tcp_wrappers` and the deciding rule as `file:line`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const files = { stamp: () => "", read: (path: string) => path === "/etc/hosts.deny" ? "\n\nsrelay: 192.0.2.\n" : "" };
 * const admitter = hostsAccessAdmitter(openHostsAccess({ files }));
 * const client = { address: { host: "192.0.2.7", port: 40000, family: 4 as const },
 *   local: { host: "192.0.2.1", port: 1080, family: 4 as const } };
 * assert.deepEqual(admitter.admit(client, null as never),
 *   { admitted: false, outcome: "denied_by_tcp_wrappers", reason: "/etc/hosts.deny:3" });
 * ```
 */
export function hostsAccessAdmitter(access: HostsAccess): Admitter {
  const decide = (client: ClientInfo, verdict: AccessVerdict): AdmitDecision =>
    verdict.granted ? { admitted: true, client } : {
      admitted: false,
      outcome: "denied_by_tcp_wrappers",
      reason: `${verdict.rule.file}:${verdict.rule.line}`,
    };
  return {
    admit(client) {
      const verdict = access.check(client);
      return verdict instanceof Promise ? verdict.then((v) => decide(client, v)) : decide(client, verdict);
    },
  };
}

/**
 * A client name lookup with libwrap's forward check: the reverse name of
 * the address, kept only if that name resolves back to the address
 * (otherwise "paranoid"); "unknown" when there is no reverse name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const lookup = verifiedClientName(
 *   async () => "Host.Example.COM.",
 *   async (name) => (name === "host.example.com" ? ["192.0.2.7"] : []),
 * );
 * assert.deepEqual(await lookup("192.0.2.7"), { name: "host.example.com" });
 * assert.equal(await lookup("192.0.2.8"), "paranoid");
 * ```
 */
export function verifiedClientName(
  reverse: ReverseLookup,
  resolve: Resolver["resolve"],
): ClientNameLookup {
  return async (address) => {
    const found = await reverse(address);
    if (found === null) return "unknown";
    const name = found.toLowerCase().replace(/\.$/, "");
    const wanted = parseHost(address);
    let addresses: readonly string[];
    try {
      addresses = await resolve(name);
    } catch {
      // A name that does not resolve cannot be verified: libwrap calls it paranoid too.
      return "paranoid";
    }
    const verified = addresses.some((text) => {
      const other = parseHost(text);
      return wanted !== null && other !== null && other.family === wanted.family && other.value === wanted.value;
    });
    return verified ? { name } : "paranoid";
  };
}

// ---- files --------------------------------------------------------------------

const NODE_FILES: TableFiles = {
  stamp(path) {
    try {
      const stat = statSync(path);
      return `${stat.mtimeMs}/${stat.ctimeMs}/${stat.size}/${stat.ino}`;
    } catch (error) {
      return `error ${errorCode(error)}`;
    }
  },
  read: (path) => readFileSync(path, "utf8"),
};

function errorCode(error: unknown): string {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---- hosts -------------------------------------------------------------------

/** `undefined`: the answer depends on the client's name, which is not known yet. */
type Tri = boolean | undefined;
type HostFunction = (host: Host) => Tri;
/** A compiled pattern or list: a constant when it does not depend on the host. */
type Test = boolean | HostFunction;

const MAPPED_PREFIX = 0xffffn << 32n;

/** A client (or server) address in the forms patterns compare against. */
class Host {
  readonly address: IpAddress;
  /** The IPv4 address as an unsigned 32-bit number (family 4 only). */
  readonly v4: number;
  /** The IPv6 address, or for IPv4 its `::ffff:a.b.c.d` form. */
  readonly v6: bigint;
  /** The name; `undefined` until looked up. */
  name: ClientName | undefined;
  #text: string | undefined;

  constructor(text: string, name: ClientName | undefined) {
    const address = parseHost(text);
    if (address === null) throw new TypeError(`Cannot check access: '${text}' is not an IP address`);
    this.address = address;
    this.v4 = address.family === 4 ? Number(address.value) : -1;
    this.v6 = address.family === 4 ? MAPPED_PREFIX | address.value : address.value;
    this.name = name;
  }

  /** The address as text (dotted quad, RFC 5952), as libwrap compares it. */
  get text(): string {
    this.#text ??= formatIp({ family: this.address.family, value: this.address.value });
    return this.#text;
  }
}

/** Applies `test` to the client's verified name: false when it has none, undefined when not looked up yet. */
function byName(host: Host, test: (name: string) => boolean): Tri {
  const name = host.name;
  if (name === undefined) return undefined;
  return typeof name === "object" && test(name.name);
}

function anyOf(tests: readonly Test[]): Test {
  if (tests.includes(true)) return true;
  const functions = tests.filter((test): test is HostFunction => typeof test === "function");
  if (functions.length === 0) return false;
  if (functions.length === 1) return functions[0] as HostFunction;
  return (host) => {
    let open = false;
    for (const test of functions) {
      const result = test(host);
      if (result === true) return true;
      if (result === undefined) open = true;
    }
    return open ? undefined : false;
  };
}

/** `main` unless `except`, in three-valued logic. */
function unless(main: Test, except: Test): Test {
  if (main === false || except === true) return false;
  if (except === false) return main;
  return (host) => {
    const matched = main === true || main(host);
    if (matched === false) return false;
    const excepted = except(host);
    if (excepted === true) return false;
    return matched === true && excepted === false ? true : undefined;
  };
}

function globRegExp(glob: string): RegExp {
  const source = [...glob].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[\\^$.|+()[\]{}]/, "\\$&")));
  return new RegExp(`^${source.join("")}$`, "s");
}

/** libwrap's string_match against a fixed string (the daemon or user name). */
function stringMatches(pattern: StringPattern, value: string): boolean {
  switch (pattern.kind) {
    case "all":
      return true;
    case "known":
      return value !== "unknown";
    case "exact":
      return value === pattern.text;
    case "suffix":
      return value.length > pattern.text.length && value.endsWith(pattern.text);
    case "prefix":
      return value.startsWith(pattern.text);
    case "glob":
      return globRegExp(pattern.text).test(value);
  }
}

// ---- loading and compiling ------------------------------------------------------

/** The compiled tables in force. */
interface Tables {
  readonly issues: readonly ConfigIssue[];
  readonly usesNames: boolean;
  /** Stamp of every file read, pattern files included, at load time. */
  readonly stamps: ReadonlyMap<string, string>;
  /**
   * Index of the first rule matching the client (`Infinity`: none), or
   * `undefined` when that depends on the client's name, not looked up yet.
   * `local` is the address the client reached.
   */
  decide(host: Host, local: string): number | undefined;
  /** The verdict of the rule at `index` (`Infinity`: no rule). */
  verdict(index: number): AccessVerdict;
}

/** A rule that is not indexed; rules that can never match are dropped at load time. */
interface CompiledRule {
  readonly index: number;
  /** The daemon list, which depends on the server address only through `daemon@host`. */
  readonly server: true | HostFunction;
  readonly client: true | HostFunction;
}

/** State of one load. */
class Loader {
  readonly issues: ConfigIssue[] = [];
  readonly stamps = new Map<string, string>();
  usesNames = false;
  readonly #files: TableFiles;
  readonly #patternFiles = new Map<string, Test>();
  readonly #opening: string[] = [];
  /** Where the rule being compiled is. */
  #at: RuleRef = { file: "", line: 0 };

  constructor(files: TableFiles) {
    this.#files = files;
  }

  /** The file's text, `null` when it does not exist; other errors are thrown. */
  read(path: string): string | null {
    this.stamps.set(path, this.#files.stamp(path));
    try {
      return this.#files.read(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return null;
      throw error;
    }
  }

  warn(file: string, line: number, message: string): void {
    this.issues.push({ file, line, severity: "warning", message });
  }

  compileRule(file: string, rule: HostsRule, daemon: string): { server: Test; client: Test } {
    this.#at = { file, line: rule.line };
    return {
      server: this.#list(rule.daemons, (pattern) => this.#daemon(pattern, daemon)),
      client: this.#list(rule.clients, (pattern) => this.#client(pattern)),
    };
  }

  #list<P>(list: PatternList<P>, compile: (pattern: P) => Test): Test {
    const main = anyOf(list.patterns.map(compile));
    return list.except === null ? main : unless(main, this.#list(list.except, compile));
  }

  #daemon(pattern: DaemonPattern, daemon: string): Test {
    if (!stringMatches(pattern.daemon, daemon)) return false;
    return pattern.host === null ? true : this.#host(pattern.host);
  }

  #client(pattern: ClientPattern): Test {
    if (pattern.kind !== "user") return this.#host(pattern);
    if (stringMatches(pattern.user, UNKNOWN_USER)) return this.#host(pattern.host);
    this.#warnHere("srelay makes no ident lookups, so a user@host pattern for a user never matches");
    return false;
  }

  #host(pattern: HostPattern): Test {
    switch (pattern.kind) {
      case "all":
        return true;
      case "network":
        return networkTest(pattern.family, pattern.network, pattern.mask);
      case "address_suffix": {
        const suffix = pattern.suffix;
        return (host) => host.text.length > suffix.length && host.text.endsWith(suffix);
      }
      case "file":
        return this.#file(pattern.path);
    }
    this.usesNames = true;
    switch (pattern.kind) {
      case "known":
        return (host) => byName(host, () => true);
      case "local":
        return (host) => byName(host, (name) => !name.includes("."));
      case "unknown":
        return (host) => host.name === undefined ? undefined : host.name === "unknown";
      case "paranoid":
        return (host) => host.name === undefined ? undefined : host.name === "paranoid";
      case "glob": {
        const glob = globRegExp(pattern.glob);
        return (host) => glob.test(host.text) || byName(host, (name) => glob.test(name));
      }
      case "name": {
        const text = pattern.text;
        if (pattern.match === "exact") return (host) => byName(host, (name) => name === text);
        if (pattern.match === "prefix") return (host) => byName(host, (name) => name.startsWith(text));
        return (host) => byName(host, (name) => name.length > text.length && name.endsWith(text));
      }
    }
  }

  /** A `/path` pattern file, read once per load; it matches when one of its patterns does. */
  #file(path: string): Test {
    const known = this.#patternFiles.get(path);
    if (known !== undefined) return known;
    if (this.#opening.includes(path) || this.#opening.length >= MAX_FILE_DEPTH) {
      this.#warnHere(`pattern file ${path} includes itself or nests too deep; it matches nothing`);
      return false;
    }
    const test = this.#readPatternFile(path);
    this.#patternFiles.set(path, test);
    return test;
  }

  #readPatternFile(path: string): Test {
    let text: string | null;
    try {
      text = this.read(path);
    } catch (error) {
      this.#warnHere(`cannot read pattern file ${path}: ${errorText(error)}; it matches nothing`);
      return false;
    }
    if (text === null) {
      this.#warnHere(`pattern file ${path} does not exist; it matches nothing`);
      return false;
    }
    const parsed = parseHostPatternFile(text, path);
    this.issues.push(...parsed.issues);
    this.#opening.push(path);
    const at = this.#at;
    const test = anyOf(parsed.patterns.map((pattern) => {
      this.#at = { file: path, line: 0 };
      return this.#host(pattern);
    }));
    this.#at = at;
    this.#opening.pop();
    return test;
  }

  #warnHere(message: string): void {
    this.warn(this.#at.file, this.#at.line, message);
  }
}

function networkTest(family: 4 | 6, network: bigint, mask: bigint): HostFunction {
  if (family === 6) return (host) => (host.v6 & mask) === network;
  const net = Number(network);
  const bits = Number(mask);
  return (host) => host.v4 >= 0 && ((host.v4 & bits) >>> 0) === net;
}

function loadTables(allowFile: string, denyFile: string, daemon: string, files: TableFiles): Tables {
  const loader = new Loader(files);
  const refs: RuleRef[] = [];
  const verdicts: AccessVerdict[] = [];
  const index = new NetworkIndex();
  const rest: CompiledRule[] = [];
  for (const [file, granted] of [[allowFile, true], [denyFile, false]] as const) {
    let text: string | null;
    try {
      text = loader.read(file);
    } catch (error) {
      if (granted) {
        loader.warn(file, 0, `cannot read ${file}: ${errorText(error)}; read as empty`);
        continue;
      }
      loader.warn(file, 0, `cannot read ${file}: ${errorText(error)}; every client is denied, as libwrap does`);
      index.addAll(refs.length);
      refs.push({ file, line: 0 });
      verdicts.push({ granted: false, rule: { file, line: 0 } });
      break;
    }
    if (text === null) continue;
    const table = parseHostsTable(text, file);
    loader.issues.push(...table.issues);
    for (const rule of table.rules) {
      const { server, client } = loader.compileRule(file, rule, daemon);
      if (server === false || client === false) continue;
      const ruleIndex = refs.length;
      const ref = { file, line: rule.line };
      refs.push(ref);
      verdicts.push({ granted: rule.option === null ? granted : rule.option === "allow", rule: ref });
      if (server !== true || !index.add(ruleIndex, rule.clients)) rest.push({ index: ruleIndex, server, client });
    }
  }
  return {
    issues: loader.issues,
    usesNames: loader.usesNames,
    stamps: loader.stamps,
    verdict: (ruleIndex) => verdicts[ruleIndex] ?? NO_MATCH,
    decide(host, local) {
      let best = index.first(host);
      let server: Host | undefined;
      for (const rule of rest) {
        if (rule.index >= best) break;
        if (rule.server !== true && rule.server(server ??= new Host(local, "unknown")) !== true) continue;
        const matched = rule.client === true || rule.client(host);
        if (matched === undefined) return undefined;
        if (matched) {
          best = rule.index;
          break;
        }
      }
      return best;
    },
  };
}

/**
 * First-match index of the rules whose client list is `ALL` and address
 * prefixes only: per family, one hash table per prefix length, mapping the
 * masked address to the lowest rule index.
 */
class NetworkIndex {
  #all = Infinity;
  readonly #v4 = new Map<number, { mask: number; rules: Map<number, number> }>();
  readonly #v6 = new Map<number, { shift: bigint; rules: Map<bigint, number> }>();
  #v4Tables: Array<{ mask: number; rules: Map<number, number> }> = [];
  #v6Tables: Array<{ shift: bigint; rules: Map<bigint, number> }> = [];

  addAll(index: number): void {
    this.#all = Math.min(this.#all, index);
  }

  /** Indexes the rule when its list qualifies; false when it does not. */
  add(index: number, list: PatternList<ClientPattern>): boolean {
    if (list.except !== null) return false;
    const prefixes: Array<{ family: 4 | 6; network: bigint; prefix: number }> = [];
    for (const pattern of list.patterns) {
      if (pattern.kind === "all") {
        this.addAll(index);
        return true;
      }
      const prefix = pattern.kind === "network" ? prefixLength(pattern.family, pattern.mask) : null;
      if (pattern.kind !== "network" || prefix === null) return false;
      prefixes.push({ family: pattern.family, network: pattern.network, prefix });
    }
    for (const { family, network, prefix } of prefixes) {
      if (family === 4) {
        const table = mapEntry(
          this.#v4,
          prefix,
          () => ({ mask: prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0, rules: new Map() }),
        );
        if (!table.rules.has(Number(network))) table.rules.set(Number(network), index);
      } else {
        const shift = BigInt(128 - prefix);
        const table = mapEntry(this.#v6, prefix, () => ({ shift, rules: new Map() }));
        if (!table.rules.has(network >> shift)) table.rules.set(network >> shift, index);
      }
    }
    this.#v4Tables = [...this.#v4.values()];
    this.#v6Tables = [...this.#v6.values()];
    return true;
  }

  /** The lowest indexed rule matching the host, `Infinity` for none. */
  first(host: Host): number {
    let best = this.#all;
    if (host.v4 >= 0) {
      for (const table of this.#v4Tables) {
        const index = table.rules.get((host.v4 & table.mask) >>> 0);
        if (index !== undefined && index < best) best = index;
      }
    }
    for (const table of this.#v6Tables) {
      const index = table.rules.get(host.v6 >> table.shift);
      if (index !== undefined && index < best) best = index;
    }
    return best;
  }
}

function mapEntry<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** The prefix length of a contiguous mask, `null` for any other. */
function prefixLength(family: 4 | 6, mask: bigint): number | null {
  const bits = family === 4 ? 32 : 128;
  const hostBits = ((1n << BigInt(bits)) - 1n) ^ mask;
  if ((hostBits & (hostBits + 1n)) !== 0n) return null;
  return bits - (hostBits === 0n ? 0 : hostBits.toString(2).length);
}
