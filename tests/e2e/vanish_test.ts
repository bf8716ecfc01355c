/**
 * End to end: a client that vanishes without FIN or reset (its network is
 * gone) while its session relays, in the modes bun, deno and binary.
 *
 * The client runs in a network namespace of its own, joined to the host by
 * a veth pair (10.251.M.0/30, M per mode); srelay listens on the host end
 * with `-o 0.02` (1.2 s) and `--allow-internal` (the echo target is on this
 * host's loopback). Once ncat's session echoes through srelay, the veth
 * pair is deleted and ncat killed: nothing of its end reaches srelay. The
 * idle timeout must close the session with one `idle_timeout` line, and
 * srelay's descriptors must come back to their baseline; the next client is
 * served. The namespace and the link are removed in every case.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { which } from "../helpers/peers.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { descriptorsBackTo, openDescriptors } from "../helpers/descriptors.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const NO_TOOLS = which("ip") === null || which("ncat") === null ? "needs ip (iproute2) and ncat" : false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")}: ${result.stderr.trim()}`);
}

/** ncat in the namespace, through srelay to the echo target; resolves once a line came back. */
async function echoingClient(
  namespace: string,
  proxy: string,
  targetPort: number,
): Promise<{ child: ChildProcess; output(): string }> {
  const child = spawn("ip", [
    "netns",
    "exec",
    namespace,
    "ncat",
    "--proxy",
    proxy,
    "--proxy-type",
    "socks5",
    "127.0.0.1",
    String(targetPort),
  ], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stdin?.write("hello\n");
  const deadline = Date.now() + 5000;
  while (!output.includes("hello\n") && Date.now() < deadline) await sleep(20);
  assert.match(output, /hello\n/, `ncat's session echoes through srelay (ncat said: ${output})`);
  return { child, output: () => output };
}

let subnet = 240;
for (const { mode, skip } of serverModes()) {
  if (mode === "node-io") continue;
  const octet = subnet++;
  const namespace = `srelay-vanish-${process.pid}-${octet}`;
  const hostLink = `svh${octet}a${process.pid % 10000}`;
  const nsLink = `svh${octet}b${process.pid % 10000}`;
  const hostAddress = `10.251.${octet}.1`;
  const clientAddress = `10.251.${octet}.2`;
  const skipped = skip || NO_TOOLS;
  /** Joins the namespace to the host with a new veth pair. */
  const linkUp = () => {
    ip("link", "add", hostLink, "type", "veth", "peer", "name", nsLink);
    ip("link", "set", nsLink, "netns", namespace);
    ip("addr", "add", `${hostAddress}/30`, "dev", hostLink);
    ip("link", "set", hostLink, "up");
    ip("netns", "exec", namespace, "ip", "addr", "add", `${clientAddress}/30`, "dev", nsLink);
    ip("netns", "exec", namespace, "ip", "link", "set", nsLink, "up");
  };

  describe(`srelay (${mode}): a client that vanishes without FIN`, () => {
    let server: RunningServer;
    let echo: FakeServer;
    let dir: string;
    let baseline = 0;

    before(async () => {
      if (skipped) return;
      ip("netns", "add", namespace);
      linkUp();
      ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
      dir = mkdtempSync(join(tmpdir(), "srelay-vanish-"));
      writeFileSync(join(dir, "srelay.conf"), "");
      echo = await startEchoServer();
      server = await startServer(mode, [
        "-i",
        `${hostAddress}:0`,
        "-c",
        join(dir, "srelay.conf"),
        "-o",
        "0.02",
        "--allow-internal",
      ]);
      // Warm up (lazy descriptors), then take the baseline.
      const warm = await echoingClient(namespace, `${hostAddress}:${server.port}`, echo.port);
      warm.child.stdin?.end();
      warm.child.kill();
      await sleep(500);
      baseline = openDescriptors(server.process.pid!);
    });

    after(async () => {
      if (skipped) return;
      await server?.stop();
      await echo?.close();
      spawnSync("ip", ["link", "del", hostLink]);
      spawnSync("ip", ["netns", "del", namespace]);
      if (dir) rmSync(dir, { recursive: true, force: true });
      assert.doesNotMatch(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, new RegExp(namespace));
    });

    test("the idle timeout closes its session with one line; descriptors back; the next client is served", {
      skip: skipped,
    }, async () => {
      const from = server.output().length;
      const client = await echoingClient(namespace, `${hostAddress}:${server.port}`, echo.port);
      assert.ok(openDescriptors(server.process.pid!) > baseline, "the session holds descriptors");
      ip("link", "del", hostLink);
      client.child.kill("SIGKILL");
      const line = await waitForNewOutput(
        server,
        from,
        new RegExp(`${clientAddress.replaceAll(".", "\\.")}:\\d+ 5-CON [^\\n]* up=6 down=6 time=\\S+ idle_timeout`),
        5000,
      );
      assert.match(line, /time=1\.\d+s idle_timeout/);
      await descriptorsBackTo(server, baseline);
      assert.equal(
        server.output().slice(from).split("\n").filter((text) =>
          text.includes(`${clientAddress}:`) && /time=/.test(text)
        )
          .length,
        1,
        "one closing line for the vanished client",
      );
      // The link is gone: bring a new one up and serve the next client.
      linkUp();
      await sleep(200);
      const next = await echoingClient(namespace, `${hostAddress}:${server.port}`, echo.port);
      next.child.stdin?.end();
      next.child.kill();
    });
  });
}
