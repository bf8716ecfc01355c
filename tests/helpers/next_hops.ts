/**
 * Real next hops from Debian for tests: microsocks (SOCKS5, optional RFC 1929
 * credentials), Dante (SOCKS5 and SOCKS4 on one daemon, optional blocked
 * destinations) and tinyproxy (HTTP CONNECT, optional Basic auth). Each is
 * started in the foreground on a loopback port picked at run time, with its
 * configuration in a temporary directory that `stop()` removes. Each can be
 * given its own outgoing address (microsocks `-b`, Dante `external:`,
 * tinyproxy `Bind`) so a target can tell which hop reached it.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort } from "./fake_hops.ts";
import { type PeerProcess, startPeer } from "./peer_process.ts";
import { needs, which } from "./peers.ts";

/** A user name and password a hop demands. */
export interface HopCredentials {
  readonly username: string;
  readonly password: string;
}

/** Skip reason for microsocks (`false` when installed). */
export const NO_MICROSOCKS: string | false = needs("microsocks");
/** Skip reason for Dante (`false` when installed). */
export const NO_DANTE: string | false = needs("danted", "dante-server");
/** Skip reason for tinyproxy (`false` when installed). */
export const NO_TINYPROXY: string | false = needs("tinyproxy");

/** Options for `startMicrosocks`. */
export interface MicrosocksOptions {
  /** Listening address (default 127.0.0.1; `::1` works too). */
  readonly host?: string;
  /** Outgoing address (`-b`). */
  readonly outgoing?: string;
  /** Demand these credentials (`-u`, `-P`). */
  readonly credentials?: HopCredentials;
}

/** Starts microsocks. */
export async function startMicrosocks(options: MicrosocksOptions = {}): Promise<PeerProcess> {
  const host = options.host ?? "127.0.0.1";
  const port = await closedPort(host);
  const { credentials } = options;
  return startPeer({
    command: [
      which("microsocks") ?? "microsocks",
      "-i",
      host,
      "-p",
      String(port),
      ...(options.outgoing === undefined ? [] : ["-b", options.outgoing]),
      ...(credentials === undefined ? [] : ["-u", credentials.username, "-P", credentials.password]),
    ],
    host,
    port,
  });
}

/** Options for `startDante`. */
export interface DanteOptions {
  /** Listening address (default 127.0.0.1). */
  readonly host?: string;
  /** Outgoing address (`external:`, default the listening address). */
  readonly outgoing?: string;
  /** Destinations (CIDR, e.g. `127.0.3.4/32`) refused by a `socks block` rule. */
  readonly blocked?: readonly string[];
}

/** Starts Dante (danted) with SOCKS v4 and v5, no authentication. */
export async function startDante(options: DanteOptions = {}): Promise<PeerProcess> {
  const host = options.host ?? "127.0.0.1";
  const port = await closedPort(host);
  const dir = mkdtempSync(join(tmpdir(), "srelay-dante-"));
  const config = join(dir, "sockd.conf");
  writeFileSync(
    config,
    [
      "logoutput: stderr",
      `internal: ${host} port = ${port}`,
      `external: ${options.outgoing ?? host}`,
      "socksmethod: none",
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "}",
      ...(options.blocked ?? []).flatMap((destination) => [
        "socks block {",
        `  from: 0.0.0.0/0 to: ${destination}`,
        "}",
      ]),
      "socks pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "}",
      "",
    ].join("\n"),
  );
  return removingDir(
    dir,
    () =>
      startPeer({
        command: [
          which("danted") ?? "danted",
          "-f",
          config,
          "-N",
          "1",
          "-p",
          join(dir, "sockd.pid"),
        ],
        host,
        port,
      }),
  );
}

/** Options for `startTinyproxy`. */
export interface TinyproxyOptions {
  /** Listening address (default 127.0.0.1). */
  readonly host?: string;
  /** Outgoing address (`Bind`). */
  readonly outgoing?: string;
  /** The only ports CONNECT may reach (`ConnectPort`); others get 403. Empty: every port. */
  readonly connectPorts: readonly number[];
  /** Demand these credentials (`BasicAuth`). */
  readonly credentials?: HopCredentials;
  /** Clients allowed (`Allow`, default 127.0.0.0/8, so other hops' outgoing addresses may use it). */
  readonly allow?: string;
}

/** Starts tinyproxy. */
export async function startTinyproxy(options: TinyproxyOptions): Promise<PeerProcess> {
  const host = options.host ?? "127.0.0.1";
  const port = await closedPort(host);
  const dir = mkdtempSync(join(tmpdir(), "srelay-tinyproxy-"));
  const config = join(dir, "tinyproxy.conf");
  const { credentials } = options;
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `Listen ${host}`,
      ...(options.outgoing === undefined ? [] : [`Bind ${options.outgoing}`]),
      `Allow ${options.allow ?? "127.0.0.0/8"}`,
      ...options.connectPorts.map((connectPort) => `ConnectPort ${connectPort}`),
      ...(credentials === undefined ? [] : [`BasicAuth ${credentials.username} ${credentials.password}`]),
      "LogLevel Warning",
      "MaxClients 100",
      "",
    ].join("\n"),
  );
  return removingDir(
    dir,
    () => startPeer({ command: [which("tinyproxy") ?? "tinyproxy", "-d", "-c", config], host, port }),
  );
}

/** Starts a peer whose files live in `dir`, and removes `dir` when it stops (or fails to start). */
async function removingDir(dir: string, start: () => Promise<PeerProcess>): Promise<PeerProcess> {
  let peer: PeerProcess;
  try {
    peer = await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host: peer.host,
    port: peer.port,
    output: () => peer.output(),
    async stop() {
      await peer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `body` with a daemon, stopping it afterwards and attaching its output to a failure. */
export async function withPeer(
  start: () => Promise<PeerProcess>,
  body: (peer: PeerProcess) => Promise<void>,
): Promise<void> {
  const peer = await start();
  try {
    await body(peer);
  } catch (error) {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- peer output ---\n${peer.output()}`,
      {
        cause: error,
      },
    );
  } finally {
    await peer.stop();
  }
}
