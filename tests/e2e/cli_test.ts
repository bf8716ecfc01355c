/**
 * The command line and process behaviour of the real CLI: help, version,
 * usage errors, start-up lines, background mode, PID file, session limit,
 * idle timeout, JSON logs and graceful shutdown.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { type AddressInfo, createServer } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../helpers/run_command.ts";
import { openClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { serverCommand, serverModes, startServer } from "../helpers/srelay_process.ts";
import { startEchoServer } from "../helpers/fake_hops.ts";
import type { TestServer } from "../helpers/targets.ts";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) command line`, () => {
    let echo: TestServer;
    let dir: string;
    const run = (args: string[]) => {
      const [program, ...prefix] = serverCommand(mode);
      return runCommand(program!, [...prefix, ...args], { timeoutMs: 30_000 });
    };

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      dir = mkdtempSync(join(tmpdir(), "srelay-cli-"));
    });

    after(async () => {
      if (skip) return;
      await echo?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test("-h prints every option and exits 0", { skip }, async () => {
      const result = await run(["-h"]);
      assert.equal(result.code, 0);
      for (
        const option of [
          "-c FILE",
          "-i ADDR",
          "-m NUM",
          "-o MINUTES",
          "-p FILE",
          "-u FILE",
          "-a ORDER",
          "-U FILE",
          "-w",
          "--rules FILE",
          "-f",
          "-r",
          "-s",
          "-t",
          "-b",
          "-g",
          "-v, -V",
          "-h, -?",
          "--workers",
          "--check-config",
          "--log-format",
          "SIGHUP",
        ]
      ) {
        assert.ok(result.stdout.includes(option), `help mentions ${option}`);
      }
    });

    test("-v and -V print the version", { skip }, async () => {
      for (const flag of ["-v", "-V"]) {
        const result = await run([flag]);
        assert.equal(result.code, 0);
        assert.match(result.stdout, /^srelay \d+\.\d+\.\d+ \((bun|deno)\)\n$/);
      }
    });

    test("an unknown option is a usage error: message, hint, exit 2", { skip }, async () => {
      const result = await run(["-f", "-Z"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /srelay: Unknown option '-Z'/);
      assert.match(result.stderr, /Run 'srelay -h'/);
    });

    test("a malformed -i is a usage error naming the value", { skip }, async () => {
      const result = await run(["-f", "-i", "127.0.0.1:99999"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /Cannot parse -i '127\.0\.0\.1:99999': port '99999'/);
    });

    test("a port in use is fatal with a clear message", { skip }, async () => {
      const result = await run(["-f", "-i", `127.0.0.1:${echo.port}`]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /cannot listen: .*127\.0\.0\.1:\d+.*(in use|address_in_use)/i);
    });

    test("without -f it detaches, prints the child's PID and keeps serving; -p writes and removes the PID file", {
      skip,
    }, async () => {
      const pidFile = join(dir, `srelay-${mode}.pid`);
      const result = await run(["-i", "127.0.0.1:0", "-p", pidFile, "--log-file", join(dir, `${mode}.log`)]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const pid = Number(result.stdout.match(/running in the background, PID (\d+)/)?.[1]);
      const port = Number(result.stdout.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1]);
      assert.ok(pid > 0 && port > 0, result.stdout);
      try {
        assert.equal(Number(readFileSync(pidFile, "utf8")), pid);
        const client = await openClient("127.0.0.1", port);
        client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x42]);
        const reply = await client.read(13);
        assert.equal(reply[12], 0x42);
        client.close();
      } finally {
        process.kill(pid, "SIGTERM");
      }
      assert.equal(await waitUntil(() => !isAlive(pid), 15_000), true, "background server exited on SIGTERM");
      assert.equal(existsSync(pidFile), false, "PID file removed");
      assert.match(readFileSync(join(dir, `${mode}.log`), "utf8"), /5-CON 127\.0\.0\.1:\d+ direct bound=/);
    });

    test("a non-loopback listener without auth gets an open-proxy warning", { skip }, async () => {
      const server = await startServer(mode, ["-i", ":0"]);
      try {
        await server.waitForOutput(/an open proxy/);
        assert.match(server.output(), /listening on \[::\]:\d+|listening on 0\.0\.0\.0:\d+/);
      } finally {
        await server.stop();
      }
    });

    test("-m: clients over the limit are closed at once and logged", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-m", "1"]);
      try {
        const first = await openClient("127.0.0.1", server.port);
        first.send(socks5ConnectBytes("127.0.0.1", echo.port));
        await first.read(12);
        const second = await openClient("127.0.0.1", server.port);
        assert.equal(await second.closedWithin(3000), true);
        await server.waitForOutput(/closed: 1 sessions already running \(-m 1\)/);
        first.close();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const third = await openClient("127.0.0.1", server.port);
        third.send(socks5ConnectBytes("127.0.0.1", echo.port));
        assert.equal((await third.read(12))[1], 0);
        third.close();
      } finally {
        await server.stop();
      }
    });

    test("-o closes an idle session and logs idle_timeout", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-o", "0.01"]);
      try {
        const client = await openClient("127.0.0.1", server.port);
        client.send(socks5ConnectBytes("127.0.0.1", echo.port));
        await client.read(12);
        assert.equal(await client.closedWithin(5000), true, "closed after ~0.6 s of silence");
        await server.waitForOutput(/5-CON .* idle_timeout/);
      } finally {
        await server.stop();
      }
    });

    test("--fin-wait closes a session left half-closed and logs fin_wait_timeout", { skip }, async () => {
      const silent = createServer({ allowHalfOpen: true }, (socket) => {
        socket.on("error", () => {});
        socket.resume();
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
      const port = (silent.address() as AddressInfo).port;
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "--fin-wait", "0.3"]);
      try {
        const client = await openClient("127.0.0.1", server.port);
        client.send(socks5ConnectBytes("127.0.0.1", port));
        await client.read(12);
        client.socket.end("done talking");
        assert.equal(await client.closedWithin(5000), true, "closed ~0.3 s after the half-close");
        await server.waitForOutput(
          /5-CON 127\.0\.0\.1:\d+ direct bound=\S+ up=12 down=0 time=[\d.]+s fin_wait_timeout/,
        );
      } finally {
        await server.stop();
        silent.close();
      }
    });

    test("--log-format json writes one JSON object per session", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "--log-format", "json"]);
      try {
        const client = await openClient("127.0.0.1", server.port);
        client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x41]);
        await client.read(13);
        client.close();
        const line = await server.waitForOutput(/\{[^\n]*"outcome":"(done|client_error)"[^\n]*\}/);
        const record = JSON.parse(line);
        assert.equal(record.target, `127.0.0.1:${echo.port}`);
        assert.equal(record.route, "direct");
        assert.equal(record.bytesUp, 1);
        assert.equal(record.bytesDown, 1);
        assert.match(record.client, /^127\.0\.0\.1:\d+$/);
      } finally {
        await server.stop();
      }
    });

    test("--workers 2 shares one port between two processes and spreads sessions", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "--workers", "2"]);
      try {
        const line = await server.waitForOutput(/2 workers share 127\.0\.0\.1:\d+: PIDs (\d+), (\d+)/);
        const pids = line.match(/PIDs (\d+), (\d+)/);
        assert.ok(pids, server.output());
        for (let i = 0; i < 40; i++) {
          const client = await openClient("127.0.0.1", server.port);
          client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x41]);
          await client.read(13);
          client.close();
        }
        const served = new Set<string>();
        const done = /srelay\[(\d+)\]: 127\.0\.0\.1:\d+ 5-CON /g;
        assert.equal(
          await waitUntil(() => {
            for (const match of server.output().matchAll(done)) served.add(match[1]!);
            return served.size === 2;
          }, 5000),
          true,
          `both workers served sessions: ${[...served]}`,
        );
        assert.deepEqual([...served].sort(), [pids[1]!, pids[2]!].sort());
      } finally {
        await server.stop();
      }
      assert.match(server.output(), /srelay\[\d+\]: Stopped\n[\s\S]*Stopped\n[\s\S]*Stopped\n/);
    });

    test("-r names clients by reverse lookup (getnameinfo, so /etc/hosts counts)", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-r"]);
      try {
        const client = await openClient("127.0.0.1", server.port);
        client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x41]);
        await client.read(13);
        client.close();
        // 127.0.0.1 has several names in /etc/hosts here; getnameinfo may return any of them.
        await server.waitForOutput(/: [A-Za-z][\w.-]*\[127\.0\.0\.1\]:\d+ 5-CON 127\.0\.0\.1:\d+/);
      } finally {
        await server.stop();
      }
    });

    test("-s sends the log to syslog (--syslog-address, UDP)", { skip }, async () => {
      const receiver = createSocket("udp4");
      const messages: string[] = [];
      receiver.on("message", (message: Uint8Array) => messages.push(new TextDecoder().decode(message)));
      await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", () => resolve()));
      const port = receiver.address().port;
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-s", "--syslog-address", `127.0.0.1:${port}`]);
      try {
        const client = await openClient("127.0.0.1", server.port);
        client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x41]);
        await client.read(13);
        client.close();
        const seen = await waitUntil(
          () => messages.some((m) => / srelay\[\d+\]: .*5-CON 127\.0\.0\.1:\d+ direct bound=/.test(m)),
          5000,
        );
        assert.equal(seen, true, `syslog datagrams: ${messages.join("\n")}`);
        assert.ok(
          messages.some((m) => /^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ srelay\[\d+\]: /.test(m)),
          "syslog(3) style (RFC 3164) with the host name, facility daemon, severity info",
        );
        assert.doesNotMatch(server.output(), /5-CON/, "nothing on stderr");
      } finally {
        await server.stop();
        receiver.close();
      }
    });

    test("SIGTERM lets a running session finish, then exits 0", { skip }, async () => {
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "--grace", "10"]);
      const client = await openClient("127.0.0.1", server.port);
      client.send(socks5ConnectBytes("127.0.0.1", echo.port));
      await client.read(12);
      server.signal("SIGTERM");
      await server.waitForOutput(/SIGTERM received/);
      client.send("still here");
      assert.equal(new TextDecoder().decode(await client.read(10)), "still here");
      client.socket.end();
      const code = await server.exited;
      assert.match(server.output(), /Stopped\n/);
      // Deno's node:child_process reports a child that handled SIGTERM and
      // exited 0 as killed by SIGTERM (code null), so only the other runner
      // can see the exit code.
      if (!("Deno" in globalThis)) assert.equal(code, 0);
    });
  });
}
