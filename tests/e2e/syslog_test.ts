/**
 * Syslog as syslog(3) does it: RFC 3164 datagrams on a Unix datagram socket
 * (`/dev/log` by default, `--syslog-address PATH`) or over UDP
 * (`--syslog-address HOST:PORT`); a socket that is missing gives a warning
 * and the lines go to stderr. First the runtime's transports on their own,
 * then the real CLI in every server mode, foreground (`-f -s`) and background.
 *
 * The Unix socket is socat's (`UNIX-RECV`), which hands every datagram on
 * as one UDP datagram to a node:dgram receiver here, so boundaries are kept.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SyslogReport, SyslogTransport } from "../../src/log/syslog_sink.ts";
import { openUdpSyslog } from "../../src/runtime/syslog_udp.ts";
import { startEchoServer } from "../helpers/fake_hops.ts";
import { needs } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import { openClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { serverCommand, serverModes, startServer } from "../helpers/srelay_process.ts";
import type { TestServer } from "../helpers/targets.ts";

const noSocat = needs("socat");

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return check();
}

/** Datagrams received, as text. */
interface Receiver {
  readonly messages: string[];
  close(): Promise<void>;
}

async function udpReceiver(): Promise<Receiver & { readonly port: number; readonly socket: Socket }> {
  const socket = createSocket("udp4");
  const messages: string[] = [];
  socket.on("message", (message: Uint8Array) => messages.push(new TextDecoder().decode(message)));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return {
    socket,
    port: socket.address().port,
    messages,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A Unix datagram socket at `path` (socat), whose datagrams land in `messages`. */
async function unixReceiver(path: string): Promise<Receiver> {
  const udp = await udpReceiver();
  const child: ChildProcess = spawn("socat", ["-u", `UNIX-RECV:${path}`, `UDP-SENDTO:127.0.0.1:${udp.port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (errors += text));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  if (!(await waitUntil(() => existsSync(path), 5000))) {
    child.kill("SIGKILL");
    await udp.close();
    throw new Error(`socat did not create ${path}: ${errors}`);
  }
  return {
    messages: udp.messages,
    async close() {
      child.kill("SIGTERM");
      await exited;
      await udp.close();
    },
  };
}

/** The transport this runtime's entry point uses for Unix sockets. */
async function openUnix(path: string, report: SyslogReport): Promise<SyslogTransport> {
  if ("Bun" in globalThis) {
    const { openBunUnixSyslog } = await import("../../src/runtime/syslog_unix_bun.ts");
    return openBunUnixSyslog(path, report);
  }
  const { openDenoUnixSyslog } = await import("../../src/runtime/syslog_unix_deno.ts");
  return openDenoUnixSyslog(path, report);
}

const encode = (text: string) => new TextEncoder().encode(text);

describe("syslog transports (this runtime)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "srelay-syslog-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("Unix: one datagram per line, exactly as sent", { skip: noSocat }, async () => {
    const path = join(dir, "log-exact");
    const receiver = await unixReceiver(path);
    const reports: (string | null)[] = [];
    const transport = await openUnix(path, (error) => reports.push(error));
    try {
      const lines = Array.from({ length: 50 }, (_, i) => `<30>Nov 25 16:08:21 srelay[1]: line ${i}`);
      for (const line of lines) transport.send(encode(line));
      assert.ok(await waitUntil(() => receiver.messages.length === lines.length, 5000), receiver.messages.join("\n"));
      assert.deepEqual(receiver.messages, lines);
      assert.ok(await waitUntil(() => reports.length === lines.length, 5000));
      assert.deepEqual(reports, lines.map(() => null));
    } finally {
      await transport.close();
      await receiver.close();
    }
  });

  test("Unix: a missing socket is ENOENT, a file nobody receives on is ECONNREFUSED", async () => {
    await assert.rejects(openUnix(join(dir, "missing"), () => {}), { code: "ENOENT" });
    const plain = join(dir, "plain-file");
    writeFileSync(plain, "");
    await assert.rejects(openUnix(plain, () => {}), { code: "ECONNREFUSED" });
  });

  test("Unix: a receiver that goes away drops lines without throwing; one that comes back gets them", {
    skip: noSocat,
  }, async () => {
    const path = join(dir, "log-restart");
    let receiver = await unixReceiver(path);
    const reports: (string | null)[] = [];
    const transport = await openUnix(path, (error) => reports.push(error));
    try {
      await receiver.close();
      transport.send(encode("lost"));
      assert.ok(await waitUntil(() => reports.length === 1, 5000));
      assert.notEqual(reports[0], null, "the line is reported as dropped");
      receiver = await unixReceiver(path);
      // The Bun transport reconnects at most once a second: keep sending (bounded) until a line arrives.
      for (let i = 0; i < 40 && receiver.messages.length === 0; i++) {
        transport.send(encode(`again ${i}`));
        await waitUntil(() => receiver.messages.length > 0, 100);
      }
      assert.match(receiver.messages[0] ?? "", /^again \d+$/);
      assert.equal(reports.at(-1), null);
    } finally {
      await transport.close();
      await receiver.close();
    }
  });

  test("UDP: one datagram per line to HOST:PORT", async () => {
    const receiver = await udpReceiver();
    const reports: (string | null)[] = [];
    const transport = await openUdpSyslog("localhost", receiver.port, (error) => reports.push(error));
    try {
      transport.send(encode("<30>Nov 25 16:08:21 gw srelay[1]: hello"));
      transport.send(encode("<27>Nov 25 16:08:21 gw srelay[1]: again"));
      assert.ok(await waitUntil(() => receiver.messages.length === 2, 5000), receiver.messages.join("\n"));
      assert.deepEqual(receiver.messages, [
        "<30>Nov 25 16:08:21 gw srelay[1]: hello",
        "<27>Nov 25 16:08:21 gw srelay[1]: again",
      ]);
      assert.ok(await waitUntil(() => reports.length === 2, 5000));
      assert.deepEqual(reports, [null, null]);
    } finally {
      await transport.close();
      await receiver.close();
    }
  });

  test("UDP: a host name that does not resolve is rejected at open", async () => {
    await assert.rejects(openUdpSyslog("no-such-host.invalid", 514, () => {}), { code: "ENOTFOUND" });
  });
});

/** `<PRI>Mmm dd hh:mm:ss ` */
const HEADER = String.raw`[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d `;

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) logging to syslog`, () => {
    let echo: TestServer;
    let dir: string;

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      dir = mkdtempSync(join(tmpdir(), "srelay-syslog-e2e-"));
    });

    after(async () => {
      if (skip) return;
      await echo?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** Makes one SOCKS5 CONNECT through the server at `port`, and closes it. */
    async function oneSession(port: number): Promise<void> {
      const client = await openClient("127.0.0.1", port);
      client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x41]);
      await client.read(13);
      client.close();
    }

    const sessionLine = () => new RegExp(String.raw`5-CON 127\.0\.0\.1:${echo.port} direct bound=`);

    test("-s --syslog-address PATH: the session line reaches the Unix socket as syslog(3) writes it", {
      skip: skip || noSocat,
    }, async () => {
      const path = join(dir, `log-${mode}`);
      const receiver = await unixReceiver(path);
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-s", "--syslog-address", path]);
      try {
        await oneSession(server.port);
        const line = new RegExp(
          `^<30>${HEADER}srelay\\[${server.process.pid}\\]: 127\\.0\\.0\\.1:\\d+ ${sessionLine().source}`,
        );
        const seen = await waitUntil(() => receiver.messages.some((m) => line.test(m)), 10_000);
        assert.ok(seen, `datagrams:\n${receiver.messages.join("\n")}`);
        assert.doesNotMatch(server.output(), /5-CON|warning/, "nothing on stderr");
      } finally {
        await server.stop();
        await receiver.close();
      }
    });

    test("-s --syslog-address HOST:PORT: UDP lines carry the host name", { skip }, async () => {
      const receiver = await udpReceiver();
      const server = await startServer(mode, [
        "-i",
        "127.0.0.1:0",
        "-s",
        "--syslog-address",
        `127.0.0.1:${receiver.port}`,
      ]);
      try {
        await oneSession(server.port);
        const line = new RegExp(
          `^<30>${HEADER}\\S+ srelay\\[${server.process.pid}\\]: 127\\.0\\.0\\.1:\\d+ ${sessionLine().source}`,
        );
        const seen = await waitUntil(() => receiver.messages.some((m) => line.test(m)), 10_000);
        assert.ok(seen, `datagrams:\n${receiver.messages.join("\n")}`);
        assert.doesNotMatch(server.output(), /5-CON/, "nothing on stderr");
      } finally {
        await server.stop();
        await receiver.close();
      }
    });

    test("a missing socket: one warning on stderr, and the lines go to stderr", { skip }, async () => {
      const path = join(dir, "no-such-socket");
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "-s", "--syslog-address", path]);
      try {
        await oneSession(server.port);
        await server.waitForOutput(sessionLine());
        const warning =
          `srelay: warning: cannot log to syslog at ${path}: no such socket (ENOENT); logging to stderr instead`;
        assert.equal(server.output().split(warning).length - 1, 1, server.output());
      } finally {
        await server.stop();
      }
    });

    test("background mode logs to the Unix socket; a missing one is reported by the parent", {
      skip: skip || noSocat,
    }, async () => {
      const [program, ...prefix] = serverCommand(mode);
      const path = join(dir, `log-bg-${mode}`);
      const receiver = await unixReceiver(path);
      const pidFile = join(dir, `bg-${mode}.pid`);
      try {
        const result = await runCommand(
          program!,
          [...prefix, "-i", "127.0.0.1:0", "-p", pidFile, "--syslog-address", path],
          { timeoutMs: 30_000 },
        );
        assert.equal(result.code, 0, result.stderr + result.stdout);
        const pid = readPid(result.stdout);
        const port = Number(result.stdout.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1]);
        assert.ok(pid > 0 && port > 0, result.stdout);
        try {
          await oneSession(port);
          const line = new RegExp(`^<30>${HEADER}srelay\\[${pid}\\]: .*${sessionLine().source}`);
          assert.ok(
            await waitUntil(() => receiver.messages.some((m) => line.test(m)), 10_000),
            receiver.messages.join("\n"),
          );
        } finally {
          process.kill(pid, "SIGTERM");
        }
        assert.ok(await waitUntil(() => !existsSync(pidFile), 15_000), "background server exited on SIGTERM");

        const missing = join(dir, "no-such-socket-bg");
        const lost = await runCommand(
          program!,
          [...prefix, "-i", "127.0.0.1:0", "-p", pidFile, "--syslog-address", missing],
          { timeoutMs: 30_000 },
        );
        assert.equal(lost.code, 0, lost.stderr + lost.stdout);
        const lostPid = readPid(lost.stdout);
        try {
          assert.match(
            lost.stdout + lost.stderr,
            new RegExp(
              `cannot log to syslog at ${missing}: no such socket \\(ENOENT\\); a background server has no stderr`,
            ),
          );
        } finally {
          if (lostPid > 0) process.kill(lostPid, "SIGTERM");
        }
        assert.ok(await waitUntil(() => !existsSync(pidFile), 15_000), "second background server exited on SIGTERM");
      } finally {
        await receiver.close();
      }
    });
  });
}

function readPid(stdout: string): number {
  return Number(stdout.match(/running in the background, PID (\d+)/)?.[1] ?? 0);
}
