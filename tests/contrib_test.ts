/**
 * The files in `contrib/`: the systemd unit (its hardening keys, and
 * `systemd-analyze verify` where systemd is installed), the HAProxy config
 * (`haproxy -c`, and HAProxy really sending PROXY v2 to srelay with
 * health checks on /healthz), and the logrotate snippet (`logrotate -d`,
 * and a real rotation after which srelay writes to the new file).
 *
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { needs, which } from "./helpers/peers.ts";
import { runCommand } from "./helpers/run_command.ts";
import { openClient, socks5ConnectBytes } from "./helpers/socks_client.ts";
import { binaryPath, type RunningServer, startServer } from "./helpers/srelay_process.ts";
import { startHttpServer, type TestServer } from "./helpers/targets.ts";

const CONTRIB = fileURLToPath(new URL("../contrib/", import.meta.url));
const read = (name: string) => readFileSync(join(CONTRIB, name), "utf8");

/** A unit file's keys: section → key → every value, in order (comments and blank lines skipped). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const equals = line.indexOf("=");
    assert.ok(current !== undefined && equals > 0, `a key in a section: ${line}`);
    const key = line.slice(0, equals);
    current.set(key, [...(current.get(key) ?? []), line.slice(equals + 1)]);
  }
  return sections;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("contrib/srelay.service", () => {
  const unit = parseUnit(read("srelay.service"));
  const service = unit.get("Service")!;
  const one = (key: string) => service.get(key)?.at(-1);

  test("runs srelay in the foreground, reloads with SIGHUP and drains with SIGTERM", () => {
    assert.match(one("ExecStart") ?? "", /^\/usr\/local\/bin\/srelay -f /);
    assert.equal(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert.equal(one("KillSignal"), "SIGTERM");
    assert.ok(Number(one("TimeoutStopSec")) > 10, "longer than the default --grace of 10 s");
    assert.equal(one("Type"), "exec");
    assert.deepEqual(unit.get("Install")?.get("WantedBy"), ["multi-user.target"]);
  });

  test("never root: its own user, CAP_NET_BIND_SERVICE as the only capability, no new privileges", () => {
    assert.equal(one("DynamicUser"), "yes");
    assert.equal(one("User"), "srelay");
    assert.equal(one("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    assert.equal(one("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
    assert.equal(one("NoNewPrivileges"), "yes");
    assert.doesNotMatch(one("ExecStart") ?? "", /--user/);
  });

  test("is hardened, but leaves the JavaScript engines executable memory", () => {
    assert.equal(one("ProtectSystem"), "strict");
    for (const key of ["ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "RestrictSUIDSGID"]) {
      assert.equal(one(key), "yes", key);
    }
    assert.equal(one("RestrictAddressFamilies"), "AF_INET AF_INET6 AF_UNIX AF_NETLINK");
    assert.equal(service.has("MemoryDenyWriteExecute"), false);
  });

  test("passes systemd-analyze verify", { skip: needs("systemd-analyze", "systemd") }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-unit-"));
    try {
      // verify checks that ExecStart's program exists: point it at one that does.
      const program = existsSync(binaryPath()) ? binaryPath() : which("true")!;
      const path = join(dir, "srelay.service");
      writeFileSync(path, read("srelay.service").replaceAll("/usr/local/bin/srelay", program));
      const result = await runCommand("systemd-analyze", ["verify", path], { timeoutMs: 30_000 });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("contrib/haproxy.cfg", () => {
  const HAPROXY = needs("haproxy");
  const config = read("haproxy.cfg");

  test("TCP mode, PROXY v2 to every server, health checks on /healthz", () => {
    assert.match(config, /^\s+mode tcp$/m);
    assert.match(config, /^\s+default-server send-proxy-v2 check\b/m);
    assert.match(config, /^\s+http-check send meth GET uri \/healthz ver HTTP\/1\.1 hdr Host \S+$/m);
    assert.match(config, /^\s+http-check expect status 200$/m);
    assert.ok((config.match(/^\s+server \S+ \S+:\d+ check port \d+$/gm) ?? []).length >= 2);
  });

  test("passes haproxy -c", { skip: HAPROXY }, async () => {
    const result = await runCommand("haproxy", ["-c", "-f", join(CONTRIB, "haproxy.cfg")], { timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /Configuration file is valid/);
  });

  describe("in front of srelay (bun) with --proxy-protocol", () => {
    let srelay: RunningServer;
    let haproxy: ChildProcess;
    let http: TestServer;
    let dir: string;
    let front: number;

    before(async () => {
      if (HAPROXY) return;
      http = await startHttpServer();
      srelay = await startServer("bun", [
        "-i",
        "127.0.0.1:0",
        "--proxy-protocol",
        "--metrics",
        "127.0.0.1:0",
        // Behind a proxy a loopback listener is exposed; the test target is on loopback.
        "--allow-internal",
      ]);
      const metrics = Number((await srelay.waitForOutput(/metrics on http:\/\/127\.0\.0\.1:\d+/)).split(":").at(-1));
      front = await freePort();
      dir = mkdtempSync(join(tmpdir(), "srelay-haproxy-"));
      const cfg = join(dir, "haproxy.cfg");
      writeFileSync(
        cfg,
        config
          .replace(/^\s+server srelay\d .*$/gm, "")
          .replace(/^(\s+)# server local1 .*$/m, `$1server local1 127.0.0.1:${srelay.port} check port ${metrics}`)
          .replace("bind :1080", `bind 127.0.0.1:${front}`)
          .replace("log /dev/log local0", "log stderr local0")
          .replace(/maxconn \d+/, "maxconn 1000"),
      );
      haproxy = spawn("haproxy", ["-db", "-f", cfg], { stdio: "ignore" });
      await waitFor(
        () => openClient("127.0.0.1", front).then((client) => (client.close(), true), () => false),
        "HAProxy to listen",
      );
    });

    after(async () => {
      if (HAPROXY) return;
      haproxy?.kill("SIGTERM");
      await srelay?.stop();
      await http?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test(
      "srelay sees the client's own address and port, and /healthz keeps the server up",
      { skip: HAPROXY },
      async () => {
        const client = await openClient("127.0.0.1", front);
        try {
          client.send(socks5ConnectBytes("127.0.0.1", http.port));
          assert.deepEqual([...(await client.read(12))].slice(0, 4), [5, 0, 5, 0]);
          await srelay.waitForOutput(
            new RegExp(`127\\.0\\.0\\.1:${client.socket.localPort} 5-CON 127\\.0\\.0\\.1:${http.port}`),
          );
        } finally {
          client.close();
        }
        // Past a few health checks (inter 2s, fall 2), the server is still in use.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const again = await openClient("127.0.0.1", front);
        again.send(socks5ConnectBytes("127.0.0.1", http.port));
        assert.deepEqual([...(await again.read(12))].slice(0, 4), [5, 0, 5, 0]);
        again.close();
      },
    );
  });
});

describe("contrib/srelay.logrotate", () => {
  const LOGROTATE = needs("logrotate");
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-logrotate-"));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The snippet with its paths in `dir` and the files created for the current user. */
  function localSnippet(): string {
    const user = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
    const group = execFileSync("id", ["-gn"], { encoding: "utf8" }).trim();
    const path = join(dir, "logrotate.conf");
    writeFileSync(
      path,
      read("srelay.logrotate")
        .replaceAll("/var/log/srelay/srelay.log", join(dir, "srelay.log"))
        .replaceAll("/run/srelay/srelay.pid", join(dir, "srelay.pid"))
        .replace("create 0640 srelay srelay", `create 0640 ${user} ${group}`),
    );
    return path;
  }

  test("renames (no copytruncate), creates the new file for srelay, and sends SIGUSR1", () => {
    const snippet = read("srelay.logrotate");
    assert.match(snippet, /^\/var\/log\/srelay\/srelay\.log \{$/m);
    assert.match(snippet, /^\s+create 0640 srelay srelay$/m);
    assert.doesNotMatch(snippet, /copytruncate/);
    assert.match(snippet, /systemctl kill --kill-whom=main --signal=SIGUSR1 srelay\.service/);
    assert.match(snippet, /pkill -USR1 -F \/run\/srelay\/srelay\.pid srelay/);
  });

  test("passes logrotate -d", { skip: LOGROTATE }, async () => {
    writeFileSync(join(dir, "srelay.log"), "a line\n");
    const result = await runCommand("logrotate", ["-d", "-s", join(dir, "state"), localSnippet()]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.doesNotMatch(result.stdout + result.stderr, /error/i);
  });

  const binary = existsSync(binaryPath()) ? false : `compiled binary ${binaryPath()} missing`;
  const root = process.geteuid?.() === 0 ? false : "needs root (logrotate's create)";
  test("a real rotation: srelay writes to the new file afterwards", { skip: LOGROTATE || binary || root }, async () => {
    // Named srelay, as installed: the postrotate's pkill matches the program's name.
    const link = join(dir, "srelay");
    symlinkSync(binaryPath(), link);
    const log = join(dir, "srelay.log");
    rmSync(log, { force: true });
    const saved = process.env.SRELAY_BIN;
    process.env.SRELAY_BIN = link;
    let server: RunningServer;
    try {
      server = await startServer("binary", ["-i", "127.0.0.1:0", "--log-file", log, "-p", join(dir, "srelay.pid")]);
    } finally {
      if (saved === undefined) delete process.env.SRELAY_BIN;
      else process.env.SRELAY_BIN = saved;
    }
    try {
      await waitFor(() => /server started/.test(readFileSync(log, "utf8")), "the start-up log line");
      const result = await runCommand("logrotate", ["-f", "-s", join(dir, "state"), localSnippet()]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(readFileSync(`${log}.1`, "utf8"), /server started/);
      await waitFor(() => /SIGUSR1 received: reopened the log file/.test(readFileSync(log, "utf8")), "the reopen");
      assert.doesNotMatch(readFileSync(log, "utf8"), /server started/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
