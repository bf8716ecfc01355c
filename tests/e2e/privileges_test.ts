/**
 * `--user` with the real CLI, as root: srelay listens on a port below 1024,
 * then every uid, gid and supplementary group of every thread is nobody's
 * (`/proc/PID/task/TID/status`), it has no capabilities left, and curl still
 * works through it. `--log-file` is reopened on SIGUSR1 after a rename (as
 * logrotate does), by nobody. A root that may not switch users (no
 * CAP_SETUID/CAP_SETGID) exits 1 instead of serving. With `--workers`, the
 * workers switch and the supervisor stays root.
 *
 * Not root, only the log rotation runs (on port 0, without `--user`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { resolveAccount } from "../../src/app/drop_privileges.ts";
import { needs } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import {
  type RunningServer,
  serverCommand,
  serverModes,
  type StartOptions,
  startServer,
} from "../helpers/srelay_process.ts";
import { startHttpServer, type TestServer } from "../helpers/targets.ts";

const CURL = needs("curl");
const AS_ROOT: string | false = process.platform !== "linux"
  ? "Linux only"
  : process.geteuid?.() !== 0
  ? "needs root (--user, and a port below 1024)"
  : needs("setpriv", "util-linux");
const NOBODY = AS_ROOT ? null : resolveAccount("nobody", null);

/** The `Uid:`, `Gid:`, `Groups:` and `CapEff:` lines of every thread of `pid`, one string each. */
function threadIds(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((task) =>
    (readFileSync(`/proc/${pid}/task/${task}/status`, "utf8").match(/^(Uid|Gid|Groups|CapEff):.*$/gm) ?? [])
      .map((line) => line.trimEnd()).join("|")
  );
}

function expectedIds(uid: number, gid: number): string {
  return `Uid:\t${uid}\t${uid}\t${uid}\t${uid}|Gid:\t${gid}\t${gid}\t${gid}\t${gid}|Groups:|CapEff:\t0000000000000000`;
}

/** PIDs whose parent is `pid` (from `/proc/N/stat`). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** Starts srelay on a free port below 1024 (a few random tries). */
async function startLowPort(
  mode: Parameters<typeof startServer>[0],
  args: string[],
  options: StartOptions = {},
): Promise<RunningServer> {
  for (let attempt = 1;; attempt++) {
    const port = 600 + Math.floor(Math.random() * 400);
    try {
      return await startServer(mode, ["-i", `127.0.0.1:${port}`, ...args], options);
    } catch (error) {
      if (attempt >= 5 || !/cannot listen/.test((error as Error).message)) throw error;
    }
  }
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let http: TestServer;

before(async () => {
  http = await startHttpServer();
});

after(async () => {
  await http?.close();
});

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) --user and log rotation`, () => {
    let server: RunningServer;
    let dir: string;
    let log: string;
    let pidFile: string;

    before(async () => {
      if (skip) return;
      dir = mkdtempSync(join(tmpdir(), "srelay-user-"));
      log = join(dir, "srelay.log");
      pidFile = join(dir, "srelay.pid");
      const common = ["--log-file", log, "-p", pidFile];
      if (NOBODY === null) {
        server = await startServer(mode, ["-i", "127.0.0.1:0", ...common]);
        return;
      }
      // nobody may create files in the directory: the new log file after rotation, and removing the PID file.
      chownSync(dir, NOBODY.uid, NOBODY.gid);
      server = await startLowPort(mode, ["--user", "nobody", ...common], {
        // Start with supplementary groups, to see them cleared.
        wrapper: ["setpriv", "--groups", "4,24", "--reuid", "0", "--regid", "0", "--"],
      });
    });

    after(async () => {
      if (skip) return;
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test(
      "a port below 1024; every uid, gid and group of every thread is nobody's",
      { skip: skip || AS_ROOT },
      async () => {
        assert.ok(server.port < 1024, `port ${server.port}`);
        const pid = server.process.pid!;
        assert.equal(readFileSync(pidFile, "utf8"), `${pid}\n`);
        const threads = threadIds(pid);
        assert.ok(threads.length >= 1);
        for (const thread of threads) assert.equal(thread, expectedIds(NOBODY!.uid, NOBODY!.gid));
        // Log lines reach the file asynchronously.
        await waitFor(
          () => /Now running as nobody \(uid 65534\) and group nogroup \(gid 65534\)/.test(readFileSync(log, "utf8")),
          "the log line naming the user",
        );
      },
    );

    test("curl works through it", { skip: skip || CURL }, async () => {
      const result = await runCommand("curl", [
        "-sS",
        "--max-time",
        "10",
        "--socks5-hostname",
        server.addresses[0]!,
        `http://127.0.0.1:${http.port}/through`,
      ]);
      assert.equal(result.stderr, "");
      assert.equal(result.stdout, "hello from 127.0.0.1 /through");
    });

    test("after a rename and SIGUSR1, new lines go to a new --log-file", { skip: skip || CURL }, async () => {
      await waitFor(() => / done$/m.test(readFileSync(log, "utf8")), "the session line of the curl test");
      renameSync(log, `${log}.1`);
      server.signal("SIGUSR1");
      await waitFor(
        () => existsSync(log) && /SIGUSR1 received: reopened/.test(readFileSync(log, "utf8")),
        "a new file",
      );
      const proxy = server.addresses[0]!;
      await runCommand("curl", [
        "-sS",
        "--max-time",
        "10",
        "--socks5-hostname",
        proxy,
        `http://127.0.0.1:${http.port}/`,
      ]);
      await waitFor(() => / done$/m.test(readFileSync(log, "utf8")), "the session line in the new file");
      const old = readFileSync(`${log}.1`, "utf8");
      assert.doesNotMatch(old, /SIGUSR1 received/);
      assert.equal(old.match(/ done$/gm)?.length, 1, old);
      assert.equal(readFileSync(log, "utf8").match(/ done$/gm)?.length, 1);
      if (NOBODY !== null) assert.equal(statSync(log).uid, NOBODY.uid, "the new file is nobody's");
    });

    test("SIGTERM: exit 0, and the PID file is gone (nobody may remove it here)", { skip }, async () => {
      assert.equal(await server.stop(), 0);
      assert.equal(existsSync(pidFile), false);
    });
  });

  describe(`srelay (${mode}) --user where switching is not allowed`, () => {
    test(
      "root without CAP_SETUID/CAP_SETGID exits 1 and never says it listens",
      { skip: skip || AS_ROOT },
      async () => {
        const [program, ...rest] = serverCommand(mode);
        const result = await runCommand(
          "setpriv",
          [
            "--bounding-set",
            "-setuid,-setgid",
            "--inh-caps",
            "-setuid,-setgid",
            "--",
            program!,
            ...rest,
            "-f",
            "-i",
            "127.0.0.1:0",
            "--user",
            "nobody",
          ],
          { timeoutMs: 30_000 },
        );
        assert.equal(result.code, 1);
        assert.doesNotMatch(result.stdout, /listening on/);
        assert.match(
          result.stderr,
          /^srelay: cannot switch to --user nobody \(uid 65534, gid 65534\): setgroups.* failed: .*(EPERM|Operation not permitted).*; stopped$/m,
        );
      },
    );
  });
}

describe("srelay (bun) --workers 2 --user nobody", () => {
  test(
    "each worker is nobody, a restarted one too; the supervisor stays root to restart them",
    { skip: AS_ROOT },
    async () => {
      const server = await startLowPort("bun", ["--workers", "2", "--user", "nobody"]);
      try {
        const supervisor = server.process.pid!;
        assert.match(readFileSync(`/proc/${supervisor}/status`, "utf8"), /^Uid:\t0\t0\t0\t0$/m);
        const workers = childrenOf(supervisor);
        assert.equal(workers.length, 2, `workers ${workers.join(", ")}`);
        for (const worker of workers) {
          for (const thread of threadIds(worker)) assert.equal(thread, expectedIds(NOBODY!.uid, NOBODY!.gid));
        }
        // A worker that dies is restarted by the root supervisor: it binds the low port again, then switches.
        process.kill(workers[0]!, "SIGKILL");
        await server.waitForOutput(/Worker \d+ \(PID \d+\) exited/);
        let restarted: number[] = [];
        await waitFor(() => {
          restarted = childrenOf(supervisor).filter((pid) => !workers.includes(pid));
          return restarted.length === 1 && threadIds(restarted[0]!).every((thread) => thread.startsWith("Uid:\t65534"));
        }, "the restarted worker");
        for (const thread of threadIds(restarted[0]!)) assert.equal(thread, expectedIds(NOBODY!.uid, NOBODY!.gid));
        if (!CURL) {
          const result = await runCommand("curl", [
            "-sS",
            "--max-time",
            "10",
            "--socks5-hostname",
            server.addresses[0]!,
            `http://127.0.0.1:${http.port}/w`,
          ]);
          assert.equal(result.stdout, "hello from 127.0.0.1 /w");
        }
      } finally {
        assert.equal(await server.stop(), 0);
      }
    },
  );
});

describe("srelay (binary) as the systemd unit runs it: a user with CAP_NET_BIND_SERVICE, no --user", () => {
  test("--workers 2 listen below 1024, and a killed worker is restarted on that port", { skip: AS_ROOT }, async () => {
    // The process is nobody's from the start, so it runs a copy of the binary from a
    // directory nobody can read (the checkout may sit below a directory only root can enter).
    const dir = mkdtempSync(join(tmpdir(), "srelay-unit-"));
    chmodSync(dir, 0o755);
    const binary = join(dir, "srelay");
    copyFileSync(serverCommand("binary")[0]!, binary);
    chmodSync(binary, 0o755);
    const server = await startLowPort("binary", ["--workers", "2"], {
      command: [binary],
      cwd: dir,
      wrapper: [
        "setpriv",
        "--reuid",
        String(NOBODY!.uid),
        "--regid",
        String(NOBODY!.gid),
        "--clear-groups",
        "--inh-caps",
        "+net_bind_service",
        "--ambient-caps",
        "+net_bind_service",
        "--",
      ],
    });
    try {
      const supervisor = server.process.pid!;
      // Both workers have logged that they started (log lines go out in 10 ms batches,
      // and a worker killed before its batch is written takes its line with it).
      await server.waitForOutput(/worker \d\/2 started[\s\S]*worker \d\/2 started/);
      const workers = childrenOf(supervisor);
      assert.equal(workers.length, 2);
      process.kill(workers[0]!, "SIGKILL");
      await server.waitForOutput(/Worker \d+ \(PID \d+\) exited/);
      await server.waitForOutput(/worker \d\/2 started[\s\S]*worker \d\/2 started[\s\S]*worker \d\/2 started/);
      assert.equal(childrenOf(supervisor).length, 2);
      assert.doesNotMatch(server.output(), /Cannot restart worker/);
    } finally {
      try {
        assert.equal(await server.stop(), 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
