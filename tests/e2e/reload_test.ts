/**
 * End to end: SIGHUP reloads srelay.conf under load, in every mode of
 * `serverModes()`. Fifty paced transfers run through one route while the
 * file is rewritten to route new sessions through another hop and SIGHUP is
 * sent, then a broken file is written and SIGHUP sent again. None of the
 * fifty may be dropped or corrupted; new sessions must follow the new rules
 * after the first reload, and still follow them after the rejected one.
 *
 * The target is a whoami echo server on 127.0.1.1 that first says which
 * peer address reached it: microsocks A sends from 127.0.0.11, microsocks B
 * from 127.0.0.12.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_MICROSOCKS, startMicrosocks } from "../helpers/next_hops.ts";
import type { PeerProcess } from "../helpers/peer_process.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { openClient, type ScriptedClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { sha256 } from "../helpers/targets.ts";
import { parseWhoami, startWhoamiEcho, type WhoamiServer } from "../helpers/whoami_server.ts";

const TRANSFERS = 50;
const CHUNK_BYTES = 4096;
const CHUNKS = 30;
const CHUNK_INTERVAL_MS = 100;
const PAYLOAD_BYTES = CHUNK_BYTES * CHUNKS;

let dir: string;
let echo: WhoamiServer;
let hopA: PeerProcess | null = null;
let hopB: PeerProcess | null = null;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "srelay-reload-"));
  echo = await startWhoamiEcho("127.0.1.1");
  if (NO_MICROSOCKS === false) {
    await Promise.all([
      startMicrosocks({ outgoing: "127.0.0.11" }).then((peer) => (hopA = peer)),
      startMicrosocks({ outgoing: "127.0.0.12" }).then((peer) => (hopB = peer)),
    ]);
  }
});

after(async () => {
  await Promise.all([hopA?.stop(), hopB?.stop(), echo?.close()]);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** A rule sending the echo target through `hop`. */
const ruleVia = (hop: PeerProcess | null) => `${echo.host} any 127.0.0.1 ${hop?.port ?? 1}/5`;

/** The broken file's errors, by line: its valid line 2 would send sessions back through hop A. */
const BROKEN_ERRORS: Array<[number, RegExp]> = [
  [3, /invalid port 'bogus'/],
  [5, /invalid IPv4 address '300\.1\.2\.3'/],
  [6, /hop 'hopname' needs a port/],
];

function brokenConf(): string {
  return [
    "# version 3, broken",
    ruleVia(hopA),
    `127.0.1.2 bogus 127.0.0.1 ${hopA?.port ?? 1}/5`,
    "",
    "300.1.2.3 any",
    "127.0.1.3 any hopname 127.0.0.1 1080",
    "",
  ].join("\n");
}

/** Payload of transfer `index`: different for every transfer, so crossed streams show. */
function payloadFor(index: number): Uint8Array {
  const bytes = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + index * 7 + 1) & 0xff;
  return bytes;
}

/** Reads one `\n`-terminated line (at most 200 bytes). */
async function readLine(client: ScriptedClient): Promise<string> {
  const bytes: number[] = [];
  while (bytes.length < 200) {
    const [byte] = await client.read(1, 10_000);
    if (byte === 10) return new TextDecoder().decode(Uint8Array.from(bytes));
    bytes.push(byte!);
  }
  throw new Error(
    `No end of line in ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(bytes)))}`,
  );
}

/** Opens a SOCKS5 CONNECT to the echo target through the server and returns the whoami peer. */
async function connectToEcho(
  server: RunningServer,
): Promise<{ client: ScriptedClient; peer: string }> {
  const client = await openClient("127.0.0.1", server.port);
  try {
    client.send(socks5ConnectBytes(echo.host, echo.port));
    assert.deepEqual([...await client.read(2, 10_000)], [5, 0]);
    const reply = await client.read(10, 10_000);
    assert.equal(reply[1], 0, `CONNECT failed with REP 0x${reply[1]?.toString(16)}`);
    return { client, peer: parseWhoami(await readLine(client)).peer };
  } catch (error) {
    client.close();
    throw error;
  }
}

/** Which peer address a new session reaches the target from. */
async function newSessionPeer(server: RunningServer): Promise<string> {
  const { client, peer } = await connectToEcho(server);
  client.close();
  return peer;
}

/** Progress of the transfers. */
interface Progress {
  connected: number;
  finished: number;
}

/** One paced transfer: the whoami line, then CHUNKS chunks sent and echoed back. */
async function transfer(server: RunningServer, index: number, progress: Progress) {
  const { client, peer } = await connectToEcho(server);
  try {
    progress.connected++;
    const payload = payloadFor(index);
    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      client.send(payload.subarray(chunk * CHUNK_BYTES, (chunk + 1) * CHUNK_BYTES));
      await new Promise((resolve) => setTimeout(resolve, CHUNK_INTERVAL_MS));
    }
    const echoed = await client.read(PAYLOAD_BYTES, 20_000);
    return { index, peer, intact: sha256(echoed) === sha256(payload) };
  } finally {
    progress.finished++;
    client.close();
  }
}

/** Resolves when `ready()` holds (polled every 20 ms, at most `timeoutMs`); rejects early if `failed` does. */
async function until(
  ready: () => boolean,
  failed: Promise<unknown>,
  timeoutMs: number,
  what: string,
) {
  let stop = false;
  const poll = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (stop) return;
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await Promise.race([poll, failed.then(() => poll)]);
  } finally {
    stop = true;
  }
}

/** Sends SIGHUP and waits for the log line that says how the reload ended; returns the output since. */
async function reload(server: RunningServer, outcome: RegExp): Promise<string> {
  const mark = server.output().length;
  server.signal("SIGHUP");
  await waitForNewOutput(server, mark, outcome, 5000);
  return server.output().slice(mark);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) SIGHUP reload`, () => {
    test(
      "a SIGHUP right after the start-up lines reloads instead of killing the server",
      { skip },
      async () => {
        const conf = join(dir, `early-${mode}.conf`);
        writeFileSync(conf, "");
        const server = await startServer(mode, ["-i", "127.0.0.1:0", "-c", conf, "--grace", "1"]);
        try {
          const output = await reload(server, new RegExp(`Route table ${escape(conf)}: 0 rules`));
          assert.match(output, /SIGHUP received: reloading/);
        } finally {
          await server.stop();
        }
      },
    );

    test(
      `${TRANSFERS} transfers survive two reloads; new sessions follow the new rules, not a broken file's`,
      {
        skip: skip || NO_MICROSOCKS,
        timeout: 60_000,
      },
      async () => {
        const conf = join(dir, `srelay-${mode}.conf`);
        writeFileSync(conf, `# version 1\n${ruleVia(hopA)}\n`);
        const server = await startServer(mode, ["-i", "127.0.0.1:0", "-c", conf, "--grace", "1"]);
        try {
          const progress: Progress = { connected: 0, finished: 0 };
          const transfers = Array.from(
            { length: TRANSFERS },
            (_, index) => transfer(server, index, progress),
          );
          const all = Promise.all(transfers);
          all.catch(() => {});
          await until(
            () => progress.connected === TRANSFERS,
            all,
            20_000,
            `${TRANSFERS} transfers to connect`,
          );

          writeFileSync(
            conf,
            `# version 2: the same destination through microsocks B\n${ruleVia(hopB)}\n`,
          );
          assert.equal(progress.finished, 0, "every transfer is still running at the first SIGHUP");
          await reload(server, new RegExp(`Route table ${escape(conf)}: 1 rules`));
          assert.equal(
            await newSessionPeer(server),
            "127.0.0.12",
            "new sessions follow the reloaded file",
          );

          writeFileSync(conf, brokenConf());
          assert.equal(
            progress.finished,
            0,
            "every transfer is still running at the second SIGHUP",
          );
          const output = await reload(
            server,
            /Reload rejected: .* has errors; the previous route table stays in force/,
          );
          const rejected = output.slice(0, output.indexOf("Reload rejected"));
          const reported = rejected.split("\n").filter((line) => line.includes(`${conf}:`));
          assert.equal(reported.length, BROKEN_ERRORS.length, `one line per error:\n${output}`);
          for (const [line, reason] of BROKEN_ERRORS) {
            const text = reported.find((candidate) => candidate.includes(`${conf}:${line}: `));
            assert.ok(text !== undefined, `no error for line ${line}:\n${output}`);
            assert.match(text, reason);
          }
          assert.equal(
            await newSessionPeer(server),
            "127.0.0.12",
            "the rejected file changed nothing",
          );

          const results = await all;
          const broken = results.filter((result) => !result.intact).map((result) => result.index);
          assert.deepEqual(broken, [], "transfers whose echo differs");
          assert.deepEqual(
            [...new Set(results.map((result) => result.peer))],
            ["127.0.0.11"],
            "the transfers kept the route they started on",
          );
          const sessionEnd = new RegExp(
            `5-CON ${escape(echo.host)}:${echo.port} relay=127\\.0\\.0\\.1:${
              hopA!.port
            } bound=\\S+ up=${PAYLOAD_BYTES} `,
            "g",
          );
          await until(
            () => (server.output().match(sessionEnd)?.length ?? 0) === TRANSFERS,
            Promise.resolve(),
            5000,
            `${TRANSFERS} session end lines through microsocks A with up=${PAYLOAD_BYTES}`,
          );
        } finally {
          await server.stop();
        }
      },
    );
  });
}
