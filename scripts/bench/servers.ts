/**
 * The SOCKS5 servers the benchmark compares, and how to start each on
 * 127.0.0.1: microsocks, Dante, srelay as a compiled Bun binary, on Bun,
 * on Deno, and on Bun with the node:net adapter, and the bare relays on
 * Bun and on Deno (`bare_relay_bun.ts`, `bare_relay_deno.ts`: what each
 * runtime allows).
 *
 * @module
 */
import { existsSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";
import process from "node:process";
import { type Child, sleep, startChild, waitForLog } from "./children.ts";

/** Open-files limit for servers: 10,000 relayed sessions hold 20,000 sockets. */
const SERVER_OPEN_FILES = 65536;
/** How long a server may take to start listening. */
const START_TIMEOUT_MS = 20_000;

/** Paths the server definitions need. */
export interface ServerContext {
  readonly root: string;
  readonly workDir: string;
  readonly bun: string;
  readonly deno: string;
  /** The compiled srelay binary for this host. */
  readonly binary: string;
}

/** One server the benchmark can measure. */
export interface ServerSpec {
  /** Short machine-readable name, used in `--servers` and the JSON output. */
  readonly id: string;
  /** Name in the report. */
  readonly label: string;
  /** Why the server cannot run here, or `undefined` when it can. */
  unavailable(context: ServerContext): string | undefined;
  /** Starts the server and resolves once it accepts connections. */
  start(context: ServerContext): Promise<RunningServer>;
}

/** A started server. */
export interface RunningServer {
  /** `127.0.0.1:PORT` it listens on. */
  readonly address: string;
  readonly child: Child;
}

/** Finds a command on PATH (or an absolute path that exists). */
export function findCommand(name: string): string | undefined {
  if (name.includes("/")) return existsSync(name) ? name : undefined;
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin"]);
  return dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
}

/** A loopback port that was free a moment ago (for servers that cannot listen on port 0 and say which). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Waits until something accepts connections on `port`, failing if the child exits first. */
export async function waitForPort(child: Child, port: number): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline && !child.hasExited()) {
    if (await canConnect(port)) return;
    await sleep(25);
  }
  throw new Error(`Cannot start ${child.name}: nothing accepted connections on 127.0.0.1:${port}`);
}

/**
 * Starts srelay as `command -f -i 127.0.0.1:0 -c EMPTY ...extra`: in the
 * foreground, with an empty route table (every destination direct, whatever
 * the machine's default srelay.conf says) and default logging, to
 * `WORKDIR/ID.log`. Resolves once it listens.
 */
export async function startSrelay(
  context: ServerContext,
  id: string,
  label: string,
  command: readonly string[],
  extra: readonly string[] = [],
): Promise<RunningServer> {
  const routes = join(context.workDir, "srelay.conf");
  writeFileSync(routes, "");
  return await startListening(context, id, label, [...command, "-f", "-i", "127.0.0.1:0", "-c", routes, ...extra]);
}

/** Starts `command` with its output in `WORKDIR/ID.log`; resolves once it prints `listening on 127.0.0.1:PORT`. */
async function startListening(
  context: ServerContext,
  id: string,
  label: string,
  command: readonly string[],
  env?: Readonly<Record<string, string>>,
): Promise<RunningServer> {
  const [file, ...args] = command;
  const child = startChild(label, file ?? "", args, {
    cwd: context.root,
    logFile: join(context.workDir, `${id}.log`),
    openFiles: SERVER_OPEN_FILES,
    ...(env === undefined ? {} : { env }),
  });
  const match = await waitForLog(child, /listening on (\S+)/, START_TIMEOUT_MS);
  const address = match[1] ?? "";
  if (!/^127\.0\.0\.1:\d+$/.test(address)) {
    throw new Error(`Cannot use ${label}: it listens on ${address}, not on 127.0.0.1`);
  }
  return { address, child };
}

/** A bare relay column: `command(context)` with the listening address appended. */
function bare(
  id: string,
  label: string,
  script: string,
  command: (context: ServerContext) => string[],
): ServerSpec {
  return {
    id,
    label,
    unavailable: (context) => existsSync(join(context.root, script)) ? undefined : `${script} does not exist`,
    start: (context) =>
      startListening(context, id, label, [...command(context), script, "127.0.0.1:0"], { DENO_NO_UPDATE_CHECK: "1" }),
  };
}

/** An srelay column: `startSrelay` with `command(context)`. */
function srelay(
  id: string,
  label: string,
  command: (context: ServerContext) => string[],
  needs: (context: ServerContext) => string,
  extra: readonly string[] = [],
): ServerSpec {
  return {
    id,
    label,
    unavailable: (context) => existsSync(needs(context)) ? undefined : `${needs(context)} does not exist`,
    start: (context) => startSrelay(context, id, label, command(context), extra),
  };
}

const microsocks: ServerSpec = {
  id: "microsocks",
  label: "microsocks",
  unavailable: () =>
    findCommand("microsocks") === undefined ? "microsocks is not installed (apt-get install microsocks)" : undefined,
  async start() {
    const port = await freePort();
    const child = startChild("microsocks", findCommand("microsocks") ?? "microsocks", [
      "-i",
      "127.0.0.1",
      "-p",
      String(port),
    ], {
      logFile: "/dev/null",
      openFiles: SERVER_OPEN_FILES,
    });
    await waitForPort(child, port);
    return { address: `127.0.0.1:${port}`, child };
  },
};

/**
 * Starts Dante on a free loopback port with no authentication, `-N 2` (two
 * main servers, one per core of the benchmark machine) and the given
 * `socks pass` rules; its files are named after `name` in the work folder.
 */
export async function startDante(
  context: ServerContext,
  name: string,
  socksRules: readonly string[],
): Promise<RunningServer> {
  const port = await freePort();
  const config = join(context.workDir, `${name}.conf`);
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    config,
    [
      `logoutput: ${join(context.workDir, `${name}.log`)}`,
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      "clientmethod: none",
      "socksmethod: none",
      ...(asRoot ? ["user.privileged: root", "user.unprivileged: nobody"] : []),
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      ...socksRules,
      "",
    ].join("\n"),
  );
  const child = startChild("Dante", findCommand("danted") ?? "danted", ["-f", config, "-N", "2"], {
    logFile: join(context.workDir, `${name}.stderr.log`),
    openFiles: SERVER_OPEN_FILES,
  });
  await waitForPort(child, port);
  return { address: `127.0.0.1:${port}`, child };
}

const dante: ServerSpec = {
  id: "dante",
  label: "Dante",
  unavailable: () =>
    findCommand("danted") === undefined ? "danted is not installed (apt-get install dante-server)" : undefined,
  start: (context) =>
    startDante(context, "danted", ["socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }"]),
};

/** Every server the benchmark knows, in report order (direct, the reference, is not a server). */
export const SERVERS: readonly ServerSpec[] = [
  microsocks,
  dante,
  srelay("srelay-bin", "srelay binary", (c) => [c.binary], (c) => c.binary),
  srelay(
    "srelay-bun",
    "srelay on Bun",
    (c) => [c.bun, "src/entry/bun.ts"],
    (c) => join(c.root, "src/entry/bun.ts"),
  ),
  srelay(
    "srelay-deno",
    "srelay on Deno",
    (c) => [c.deno, "run", "-A", "src/entry/deno.ts"],
    (c) => join(c.root, "src/entry/deno.ts"),
  ),
  srelay(
    "srelay-bun-node",
    "srelay on Bun, node:net",
    (c) => [c.bun, "src/entry/bun.ts"],
    (c) => join(c.root, "src/entry/bun.ts"),
    ["--io", "node"],
  ),
  bare("bare-bun", "bare Bun relay", "scripts/bench/bare_relay_bun.ts", (c) => [c.bun]),
  bare("bare-deno", "bare Deno relay", "scripts/bench/bare_relay_deno.ts", (c) => [c.deno, "run", "--allow-net"]),
];

/** The bare relay on the runtime each srelay column runs on, for the "÷ its runtime's bare relay" ratios. */
export const BARE_RELAY_OF: Readonly<Record<string, string>> = {
  "srelay-bin": "bare-bun",
  "srelay-bun": "bare-bun",
  "srelay-bun-node": "bare-bun",
  "srelay-deno": "bare-deno",
};
