import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { formatIssue } from "../config/config_issue.ts";
import { type ClientPattern, parseHostsTable, type PatternList } from "../config/hosts_access.ts";
import { parseHost } from "../net/address.ts";
import type { ClientInfo } from "../server/admit.ts";
import {
  type AccessVerdict,
  type ClientName,
  HOSTS_ALLOW,
  HOSTS_DENY,
  type HostsAccess,
  hostsAccessAdmitter,
  type HostsAccessOptions,
  openHostsAccess,
  type TableFiles,
  verifiedClientName,
} from "./hosts_access.ts";

/** In-memory files: a missing path throws ENOENT; every `set` changes the file's stamp. */
class FakeFiles implements TableFiles {
  readonly #texts = new Map<string, string | Error>();
  readonly #versions = new Map<string, number>();
  stamps = 0;
  reads = 0;

  set(path: string, text: string | Error): this {
    this.#texts.set(path, text);
    this.#versions.set(path, (this.#versions.get(path) ?? 0) + 1);
    return this;
  }

  stamp(path: string): string {
    this.stamps++;
    return String(this.#versions.get(path) ?? "missing");
  }

  read(path: string): string {
    this.reads++;
    const text = this.#texts.get(path);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file: ${path}`), { code: "ENOENT" });
    if (text instanceof Error) throw text;
    return text;
  }
}

function client(host: string, local = "192.0.2.1"): ClientInfo {
  const family = (h: string) => (h.includes(":") ? 6 : 4) as 4 | 6;
  return {
    address: { host, port: 40000, family: family(host) },
    local: { host: local, port: 1080, family: family(local) },
  };
}

function tables(allow: string, deny = "", options: HostsAccessOptions = {}): HostsAccess {
  const files = new FakeFiles().set(HOSTS_ALLOW, allow).set(HOSTS_DENY, deny);
  return openHostsAccess({ files, ...options });
}

/** The synchronous verdict for `host`. */
function verdictOf(access: HostsAccess, host: string, local?: string): AccessVerdict {
  const verdict = access.check(client(host, local));
  assert.ok(!(verdict instanceof Promise), "the check awaited something");
  return verdict;
}

/** `allow:LINE`, `deny:LINE`, or `-` for no match, as granted or not. */
function summary(verdict: AccessVerdict): string {
  const where = verdict.rule === null
    ? "-"
    : `${verdict.rule.file === HOSTS_ALLOW ? "allow" : "deny"}:${verdict.rule.line}`;
  return `${verdict.granted ? "granted" : "denied"} ${where}`;
}

function decide(access: HostsAccess, host: string, local?: string): string {
  return summary(verdictOf(access, host, local));
}

async function decideLater(access: HostsAccess, host: string): Promise<string> {
  const verdict = access.check(client(host));
  assert.ok(verdict instanceof Promise, "the check did not look the name up");
  return summary(await verdict);
}

describe("hosts_access(5) order", () => {
  test("allow grants, else deny denies, else granted", () => {
    const access = tables("srelay: 10.0.0.1\n", "srelay: 10.0.0.0/8\n");
    assert.equal(decide(access, "10.0.0.1"), "granted allow:1");
    assert.equal(decide(access, "10.0.0.2"), "denied deny:1");
    assert.equal(decide(access, "192.0.2.9"), "granted -");
    assert.deepEqual(access.issues, []);
  });

  test("the first matching line decides; allow and deny options override the table", () => {
    const access = tables(
      "srelay: 10.0.0.0/8 : deny\nsrelay: 10.0.0.0/8\nsrelay: 172.16. EXCEPT 172.16.0.9\n",
      "ALL: ALL EXCEPT 192.168. \nsrelay: 192.168.1.1 : allow\n",
    );
    assert.equal(decide(access, "10.1.1.1"), "denied allow:1");
    assert.equal(decide(access, "172.16.3.4"), "granted allow:3");
    assert.equal(decide(access, "172.16.0.9"), "denied deny:1");
    assert.equal(decide(access, "192.168.1.1"), "granted deny:2");
    assert.equal(decide(access, "192.168.1.2"), "granted -");
  });

  test("missing tables have no rules", () => {
    const access = openHostsAccess({ files: new FakeFiles() });
    assert.equal(decide(access, "10.0.0.1"), "granted -");
    assert.deepEqual(access.issues, []);
  });

  test("an unreadable hosts.deny denies everyone; an unreadable hosts.allow counts as empty", () => {
    const denied = openHostsAccess({ files: new FakeFiles().set(HOSTS_DENY, new Error("EACCES: permission denied")) });
    assert.equal(decide(denied, "10.0.0.1"), "denied deny:0");
    assert.deepEqual(denied.issues.map(formatIssue), [
      "/etc/hosts.deny:0: warning: cannot read /etc/hosts.deny: EACCES: permission denied; every client is denied, as libwrap does",
    ]);
    const files = new FakeFiles().set(HOSTS_ALLOW, new Error("EIO")).set(HOSTS_DENY, "srelay: 10.\n");
    const empty = openHostsAccess({ files });
    assert.equal(decide(empty, "10.0.0.1"), "denied deny:1");
    assert.equal(decide(empty, "11.0.0.1"), "granted -");
    assert.deepEqual(empty.issues.map(formatIssue), [
      "/etc/hosts.allow:0: warning: cannot read /etc/hosts.allow: EIO; read as empty",
    ]);
  });
});

describe("daemon lists", () => {
  test("only rules for srelay apply", () => {
    const access = tables(
      "sshd: ALL\nALL EXCEPT srelay: 10.\nin.*, sr*y: 11.\n?relay: 12.\nKNOWN: 13.\n",
      "ALL: ALL\n",
    );
    assert.equal(decide(access, "9.0.0.1"), "denied deny:1");
    assert.equal(decide(access, "10.0.0.1"), "denied deny:1");
    assert.equal(decide(access, "11.0.0.1"), "granted allow:3");
    assert.equal(decide(access, "12.0.0.1"), "granted allow:4");
    assert.equal(decide(access, "13.0.0.1"), "granted allow:5");
  });

  test("the daemon name is an option and compared without regard to case", () => {
    const access = tables("SOCKS: ALL\n", "ALL: ALL\n", { daemon: "socks" });
    assert.equal(decide(access, "10.0.0.1"), "granted allow:1");
  });

  test("daemon@host matches the address the client reached", () => {
    const access = tables("srelay@192.0.2.1, srelay@[2001:db8::1]: ALL\n", "ALL: ALL\n");
    assert.equal(decide(access, "10.0.0.1", "192.0.2.1"), "granted allow:1");
    assert.equal(decide(access, "10.0.0.1", "192.0.2.2"), "denied deny:1");
    assert.equal(decide(access, "2001:db8::5", "2001:db8::1"), "granted allow:1");
  });
});

describe("address patterns", () => {
  const cases: Array<[pattern: string, matches: string[], misses: string[]]> = [
    ["192.168.", ["192.168.0.1", "192.168.255.255", "::ffff:192.168.1.1"], ["192.169.0.1", "10.192.168.1", "::1"]],
    ["192.0.2.7", ["192.0.2.7", "::ffff:192.0.2.7"], ["192.0.2.70"]],
    ["10.0.0.0/255.255.254.0", ["10.0.1.255"], ["10.0.2.0"]],
    ["10.0.0.0/255.0.255.0", ["10.1.0.1", "10.200.0.200"], ["10.1.1.1"]],
    ["10.128.0.0/9", ["10.200.0.1"], ["10.1.0.1"]],
    [".5", ["10.0.0.5", "192.168.1.5"], ["10.0.0.15", "10.0.0.50"]],
    ["[2001:db8::]/32", ["2001:db8::1", "2001:db8:ffff::1"], ["2001:db9::1", "10.0.0.1"]],
    ["[::1]", ["::1"], ["::2", "127.0.0.1"]],
    ["[::ffff:10.0.0.0]/104", ["10.1.2.3"], ["11.0.0.1"]],
    ["[::]/0", ["2001:db8::1", "10.0.0.1"], []],
    ["192.168.?.*", ["192.168.1.77"], ["192.168.10.1"]],
    ["*", ["10.0.0.1", "::1"], []],
    ["0.0.0.0/0", ["10.0.0.1"], ["::1"]],
  ];
  for (const [pattern, matches, misses] of cases) {
    test(pattern, () => {
      const access = tables(`srelay: ${pattern}\n`, "ALL: ALL\n");
      for (const host of matches) assert.equal(decide(access, host), "granted allow:1", host);
      for (const host of misses) assert.equal(decide(access, host), "denied deny:1", host);
    });
  }

  test("EXCEPT nests: a EXCEPT b EXCEPT c", () => {
    const access = tables("srelay: 10. EXCEPT 10.1. EXCEPT 10.1.1.1\n", "ALL: ALL\n");
    assert.equal(decide(access, "10.2.0.1"), "granted allow:1");
    assert.equal(decide(access, "10.1.0.1"), "denied deny:1");
    assert.equal(decide(access, "10.1.1.1"), "granted allow:1");
  });
});

describe("names", () => {
  const names: Record<string, ClientName> = {
    "10.0.0.1": { name: "host.example.com" },
    "10.0.0.2": { name: "printer" },
    "10.0.0.3": "unknown",
    "10.0.0.4": "paranoid",
  };
  function withNames(allow: string) {
    const asked: string[] = [];
    const access = tables(allow, "ALL: ALL\n", {
      clientName: (address) => {
        asked.push(address);
        return Promise.resolve(names[address] ?? "unknown");
      },
    });
    return { access, asked };
  }

  test("name patterns, KNOWN, LOCAL, UNKNOWN and PARANOID with a name lookup", async () => {
    const cases: Array<[pattern: string, matches: string[]]> = [
      [".example.com", ["10.0.0.1"]],
      ["host.example.com", ["10.0.0.1"]],
      ["HOST.", ["10.0.0.1"]],
      ["*.example.*", ["10.0.0.1"]],
      ["KNOWN", ["10.0.0.1", "10.0.0.2"]],
      ["LOCAL", ["10.0.0.2"]],
      ["UNKNOWN", ["10.0.0.3"]],
      ["PARANOID", ["10.0.0.4"]],
      ["ALL EXCEPT PARANOID", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]],
    ];
    for (const [pattern, matches] of cases) {
      const { access } = withNames(`srelay: ${pattern}\n`);
      assert.equal(access.usesNames, true);
      for (const host of Object.keys(names)) {
        assert.equal(
          await decideLater(access, host),
          matches.includes(host) ? "granted allow:1" : "denied deny:1",
          `${pattern} ${host}`,
        );
      }
    }
  });

  test("the name is looked up only when a rule needs it, and without awaiting otherwise", async () => {
    const { access, asked } = withNames("srelay: 10.0.0.0/31\nsrelay: .example.com\nsrelay: 192.0.2.\n");
    assert.equal(decide(access, "10.0.0.1"), "granted allow:1");
    assert.deepEqual(asked, []);
    assert.equal(await decideLater(access, "192.0.2.1"), "granted allow:3");
    assert.deepEqual(asked, ["192.0.2.1"]);
    assert.equal(decide(withNames("srelay: 10. EXCEPT 10.1.\n").access, "10.0.0.1"), "granted allow:1");
  });

  test("a glob matching the address needs no name", () => {
    const { access, asked } = withNames("srelay: 10.0.0.*\n");
    assert.equal(decide(access, "10.0.0.9"), "granted allow:1");
    assert.deepEqual(asked, []);
  });

  test("without a lookup the name is unknown: UNKNOWN matches, name patterns never do", () => {
    const access = tables("srelay: .example.com KNOWN LOCAL PARANOID 10.0.0.*\nsrelay: UNKNOWN : deny\n");
    assert.equal(access.usesNames, true);
    assert.equal(decide(access, "10.0.0.1"), "granted allow:1");
    assert.equal(decide(access, "192.0.2.1"), "denied allow:2");
    assert.equal(tables("srelay: 10.\n").usesNames, false);
  });

  test("user@host: the user is always unknown", () => {
    const access = tables("srelay: alice@10.0.0.1 ALL@10.0.0.2 UNKNOWN@10.0.0.3 KNOWN@10.0.0.4\n", "ALL: ALL\n");
    assert.deepEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"].map((host) => decide(access, host)), [
      "denied deny:1",
      "granted allow:1",
      "granted allow:1",
      "denied deny:1",
    ]);
    assert.deepEqual(access.issues.map(formatIssue), [
      "/etc/hosts.allow:1: warning: srelay makes no ident lookups, so a user@host pattern for a user never matches",
      "/etc/hosts.allow:1: warning: srelay makes no ident lookups, so a user@host pattern for a user never matches",
    ]);
  });
});

describe("verifiedClientName", () => {
  const reverse = (address: string) =>
    Promise.resolve(
      ({ "192.0.2.7": "Host.Example.COM.", "2001:db8::7": "v6.example.com", "192.0.2.8": "gone.example" } as Record<
        string,
        string
      >)[address] ?? null,
    );
  const resolve = (name: string) => {
    const answers: Record<string, string[]> = {
      "host.example.com": ["::ffff:192.0.2.7"],
      "v6.example.com": ["2001:db8:0::7"],
    };
    const found = answers[name];
    return found === undefined ? Promise.reject(new Error(`Cannot resolve ${name}`)) : Promise.resolve(found);
  };
  const lookup = verifiedClientName(reverse, resolve);

  test("a name that resolves back to the address is kept, in lower case without the final dot", async () => {
    assert.deepEqual(await lookup("192.0.2.7"), { name: "host.example.com" });
    assert.deepEqual(await lookup("2001:db8::7"), { name: "v6.example.com" });
  });

  test("no reverse name is unknown; a failing or mismatching forward lookup is paranoid", async () => {
    assert.equal(await lookup("192.0.2.9"), "unknown");
    assert.equal(await lookup("192.0.2.8"), "paranoid");
    const liar = verifiedClientName(() => Promise.resolve("host.example.com"), resolve);
    assert.equal(await liar("192.0.2.99"), "paranoid");
  });
});

describe("pattern files", () => {
  test("a /path pattern is read at load time, once, and may nest", () => {
    const files = new FakeFiles()
      .set(HOSTS_ALLOW, "srelay: /etc/clients EXCEPT /etc/banned\nALL: /etc/clients\n")
      .set(HOSTS_DENY, "ALL: ALL\n")
      .set("/etc/clients", "10.0.0.0/8 # office\n/etc/more\n")
      .set("/etc/more", "[2001:db8::]/32\n")
      .set("/etc/banned", "10.9.9.9");
    const access = openHostsAccess({ files });
    assert.equal(files.reads, 5);
    assert.deepEqual(["10.1.1.1", "2001:db8::1", "10.9.9.9", "11.0.0.1"].map((host) => decide(access, host)), [
      "granted allow:1",
      "granted allow:1",
      "granted allow:2",
      "denied deny:1",
    ]);
    assert.equal(files.reads, 5);
    assert.deepEqual(access.issues, []);
  });

  test("a missing, looping or unreadable pattern file matches nothing, with a warning", () => {
    const files = new FakeFiles()
      .set(HOSTS_ALLOW, "srelay: /etc/none /etc/loop\nsrelay: /etc/locked\nsrelay: 10. EXCEPT /etc/none\n")
      .set(HOSTS_DENY, "ALL: ALL\n")
      .set("/etc/loop", "/etc/loop 192.0.2.1\n@staff\n")
      .set("/etc/locked", new Error("EACCES"));
    const access = openHostsAccess({ files });
    assert.equal(decide(access, "192.0.2.1"), "granted allow:1");
    assert.equal(decide(access, "10.0.0.1"), "granted allow:3");
    assert.equal(decide(access, "192.0.2.2"), "denied deny:1");
    assert.deepEqual(access.issues.map(formatIssue), [
      "/etc/hosts.allow:1: warning: pattern file /etc/none does not exist; it matches nothing",
      "/etc/loop:2: warning: '@staff': NIS netgroups are not supported; entry skipped",
      "/etc/loop:0: warning: pattern file /etc/loop includes itself or nests too deep; it matches nothing",
      "/etc/hosts.allow:2: warning: cannot read pattern file /etc/locked: EACCES; it matches nothing",
    ]);
  });
});

describe("reloading", () => {
  test("stamps are looked at once per second at most; a change reloads everything", () => {
    let time = 1000;
    const reloads: string[][] = [];
    const files = new FakeFiles().set(HOSTS_ALLOW, "srelay: /etc/clients\n").set(HOSTS_DENY, "ALL: ALL\n").set(
      "/etc/clients",
      "10.0.0.1\n",
    );
    const access = openHostsAccess({
      files,
      now: () => time,
      onReload: (issues) => reloads.push(issues.map(formatIssue)),
    });
    const stamps = files.stamps;
    for (let i = 0; i < 100; i++) decide(access, "10.0.0.1");
    assert.equal(files.stamps, stamps);

    files.set("/etc/clients", "10.0.0.2\n");
    time += 999;
    assert.equal(decide(access, "10.0.0.2"), "denied deny:1");
    time += 1;
    assert.equal(decide(access, "10.0.0.2"), "granted allow:1");
    assert.deepEqual(reloads, [[]]);

    time += 1000;
    files.set(HOSTS_DENY, "ALL: ALL EXCEPT\n");
    assert.equal(decide(access, "10.0.0.3"), "denied deny:1");
    assert.deepEqual(reloads[1], [
      "/etc/hosts.deny:1: warning: EXCEPT without patterns after it in the client list excludes nothing",
    ]);
    assert.deepEqual(access.issues.map(formatIssue), reloads[1]);

    const reads = files.reads;
    time += 5000;
    decide(access, "10.0.0.3");
    assert.equal(files.reads, reads, "read again although nothing changed");
  });

  test("a table that appears is read", () => {
    let time = 0;
    const files = new FakeFiles();
    const access = openHostsAccess({ files, now: () => time });
    assert.equal(decide(access, "10.0.0.1"), "granted -");
    files.set(HOSTS_DENY, "srelay: ALL\n");
    time = 1000;
    assert.equal(decide(access, "10.0.0.1"), "denied deny:1");
  });

  test("real files: a changed mtime is noticed", () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-hosts-"));
    try {
      let time = 0;
      const allowFile = join(dir, "hosts.allow");
      const denyFile = join(dir, "hosts.deny");
      writeFileSync(allowFile, "srelay: 10.0.0.1\n");
      writeFileSync(denyFile, "ALL: ALL\n");
      const access = openHostsAccess({ allowFile, denyFile, now: () => time });
      assert.deepEqual(verdictOf(access, "10.0.0.2"), { granted: false, rule: { file: denyFile, line: 1 } });
      writeFileSync(allowFile, "srelay: 10.0.0.2\n");
      utimesSync(allowFile, new Date(2001, 1, 1), new Date(2001, 1, 1));
      time = 1000;
      assert.deepEqual(verdictOf(access, "10.0.0.2"), { granted: true, rule: { file: allowFile, line: 1 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("hostsAccessAdmitter", () => {
  test("a denied client is refused with the rule's file:line; a granted one keeps its ClientInfo", async () => {
    const admitter = hostsAccessAdmitter(tables("srelay: .example.com\n", "\nsrelay: ALL\n", {
      clientName: () => Promise.resolve({ name: "a.example.com" }),
    }));
    const granted = client("10.0.0.1");
    assert.deepEqual(await admitter.admit(granted, null as never), { admitted: true, client: granted });
    const denying = hostsAccessAdmitter(tables("", "\nsrelay: ALL\n"));
    assert.deepEqual(denying.admit(granted, null as never), {
      admitted: false,
      outcome: "denied_by_tcp_wrappers",
      reason: "/etc/hosts.deny:2",
    });
  });
});

// ---- the index against a direct reading of hosts_access(5) --------------------------

/** hosts_access(5) read directly from the parsed tables, for address-only patterns. */
function reference(allow: string, deny: string, host: string): string {
  const address = parseHost(host);
  assert.ok(address !== null);
  const mapped = address.family === 4 ? (0xffffn << 32n) | address.value : address.value;
  const matchesList = (list: PatternList<ClientPattern>): boolean =>
    list.patterns.some((pattern) => {
      if (pattern.kind === "all") return true;
      assert.equal(pattern.kind, "network");
      if (pattern.kind !== "network") return false;
      if (pattern.family === 4 && address.family !== 4) return false;
      return ((pattern.family === 4 ? address.value : mapped) & pattern.mask) === pattern.network;
    }) && (list.except === null || !matchesList(list.except));
  for (const [text, file] of [[allow, "allow"], [deny, "deny"]] as const) {
    const rule = parseHostsTable(text, file).rules.find((rule) => matchesList(rule.clients));
    if (rule !== undefined) {
      const granted = rule.option === null ? file === "allow" : rule.option === "allow";
      return `${granted ? "granted" : "denied"} ${file}:${rule.line}`;
    }
  }
  return "granted -";
}

const octet = fc.integer({ min: 0, max: 3 });
const v4Text = fc.tuple(octet, octet, octet, octet).map((parts) => parts.join("."));
const patternText = fc.oneof(
  fc.constant("ALL"),
  v4Text,
  fc.tuple(v4Text, fc.integer({ min: 0, max: 32 })).map(([address, length]) => `${address}/${length}`),
  fc.tuple(octet, octet).map(([a, b]) => `${a}.${b}.`),
  fc.tuple(v4Text, fc.constantFrom("255.255.0.255", "255.0.0.0")).map(([address, mask]) => `${address}/${mask}`),
  fc.tuple(v4Text, fc.integer({ min: 96, max: 128 })).map(([address, length]) => `[::ffff:${address}]/${length}`),
  fc.constantFrom("[::]/0", "[::1]", "[2001:db8::]/32"),
);
const lineText = fc.tuple(
  fc.array(patternText, { minLength: 1, maxLength: 3 }),
  fc.array(fc.array(patternText, { minLength: 1, maxLength: 2 }), { maxLength: 2 }),
  fc.constantFrom("", " : allow", " : deny"),
).map(([main, excepts, option]) =>
  `srelay: ${[main, ...excepts].map((group) => group.join(" ")).join(" EXCEPT ")}${option}`
);
const tableText = fc.array(lineText, { maxLength: 12 }).map((lines) => lines.join("\n"));

describe("property: the index decides as a direct reading does", () => {
  test("random address-only tables", () => {
    fc.assert(
      fc.property(
        tableText,
        tableText,
        fc.array(fc.oneof(v4Text, fc.constantFrom("::1", "2001:db8::1")), { minLength: 1, maxLength: 5 }),
        (allow, deny, hosts) => {
          const access = tables(allow, deny);
          for (const host of hosts) assert.equal(decide(access, host), reference(allow, deny, host), host);
        },
      ),
      { numRuns: 300 },
    );
  });
});
