/**
 * Syslog over a Unix datagram socket (`/dev/log`) on Bun, through libc with
 * `bun:ffi`: Bun's own sockets and its node:dgram have no Unix datagram
 * sockets, so this calls socket(2), connect(2) and send(2) as syslog(3) does.
 *
 * Sending never blocks (`MSG_DONTWAIT`): while the receiver's queue is full
 * (`EAGAIN`) lines wait in the queue of `syslog_queue.ts` and are retried
 * for up to a second each. When the receiver went away (journald restarted)
 * the socket reconnects, at most once a second, and the line is sent again.
 * Linux (glibc or musl) and macOS; Bun compiles `bun:ffi` into the binary.
 *
 * @module
 */
import { queuedSyslogTransport } from "../log/syslog_queue.ts";
import type { SyslogReport, SyslogTransport } from "../log/syslog_sink.ts";

/** The slice of `bun:ffi` used here, typed so the file checks under Deno too. */
interface BunFfi {
  dlopen(
    library: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => number> };
  read: { i32(pointer: number, offset: number): number };
}

/** Kernel constants that differ between Linux and macOS. */
interface Os {
  readonly libraries: readonly string[];
  readonly errnoSymbol: string;
  /** Flags added to `SOCK_DGRAM` in socket(2). */
  readonly socketFlags: number;
  /** Flags for send(2). */
  readonly sendFlags: number;
  /** Largest `sun_path` including its NUL. */
  readonly pathSize: number;
  /** Writes `sun_family` (and `sun_len`) into a `sockaddr_un`. */
  family(address: Uint8Array, length: number): void;
  readonly errnoNames: Readonly<Record<number, string>>;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SUN_PATH_OFFSET = 2;

const LINUX: Os = {
  libraries: ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`],
  errnoSymbol: "__errno_location",
  socketFlags: 0o4000 | 0o2000000, // SOCK_NONBLOCK | SOCK_CLOEXEC
  sendFlags: 0x40 | 0x4000, // MSG_DONTWAIT | MSG_NOSIGNAL
  pathSize: 108,
  family: (address) => {
    address[0] = AF_UNIX;
  },
  errnoNames: {
    1: "EPERM",
    2: "ENOENT",
    11: "EAGAIN",
    13: "EACCES",
    32: "EPIPE",
    90: "EMSGSIZE",
    91: "EPROTOTYPE",
    104: "ECONNRESET",
    105: "ENOBUFS",
    107: "ENOTCONN",
    111: "ECONNREFUSED",
  },
};

const DARWIN: Os = {
  libraries: ["libSystem.B.dylib"],
  errnoSymbol: "__error",
  socketFlags: 0,
  sendFlags: 0x80, // MSG_DONTWAIT
  pathSize: 104,
  family: (address, length) => {
    address[0] = length;
    address[1] = AF_UNIX;
  },
  errnoNames: {
    1: "EPERM",
    2: "ENOENT",
    13: "EACCES",
    32: "EPIPE",
    35: "EAGAIN",
    40: "EMSGSIZE",
    41: "EPROTOTYPE",
    54: "ECONNRESET",
    55: "ENOBUFS",
    57: "ENOTCONN",
    61: "ECONNREFUSED",
  },
};

/** Errors after which connecting again may help (the receiver restarted). */
const RECONNECT_ERRORS = new Set(["ECONNREFUSED", "ENOTCONN", "ENOENT", "ECONNRESET", "EPIPE"]);
const RECONNECT_INTERVAL_MS = 1000;
/** While the receiver's queue is full, retry after 1, 2, 4... ms, up to about a second in all. */
const MAX_FULL_WAIT_MS = 512;
/** Kept in a variable so that neither `deno check` nor the bundler resolves it ahead of time. */
const FFI_MODULE = "bun:ffi";

function errnoError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/** The libc calls used here. */
interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, address: Uint8Array, length: number): number;
  send(fd: number, data: Uint8Array, length: number, flags: number): number;
  close(fd: number): number;
  /** The calling thread's `errno`, by name. */
  errno(): string;
}

async function loadLibc(os: Os): Promise<Libc> {
  const { dlopen, read } = (await import(FFI_MODULE)) as BunFfi;
  const symbols = {
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
    send: { args: ["i32", "ptr", "u64", "i32"], returns: "i64_fast" },
    close: { args: ["i32"], returns: "i32" },
    [os.errnoSymbol]: { args: [], returns: "ptr" },
  };
  for (const library of os.libraries) {
    let found;
    try {
      found = dlopen(library, symbols).symbols;
    } catch {
      continue; // Not this libc: try the next name.
    }
    const errnoLocation = found[os.errnoSymbol]!;
    return {
      socket: found.socket!,
      connect: found.connect!,
      send: found.send!,
      close: found.close!,
      errno: () => {
        const value = read.i32(errnoLocation(), 0);
        return os.errnoNames[value] ?? `errno ${value}`;
      },
    };
  }
  throw errnoError("ENOSYS", `no C library among ${os.libraries.join(", ")}`);
}

/**
 * Opens a datagram socket connected to `path`. Rejects with an `Error`
 * whose `code` is `ENOENT` (no socket there), `ECONNREFUSED` (nobody
 * receives on it), `EACCES`, `EPROTOTYPE` (a stream socket) or
 * `ENAMETOOLONG`.
 */
export async function openBunUnixSyslog(path: string, report: SyslogReport): Promise<SyslogTransport> {
  const os = process.platform === "darwin" ? DARWIN : LINUX;
  const libc = await loadLibc(os);
  const name = new TextEncoder().encode(path);
  if (name.length >= os.pathSize) throw errnoError("ENAMETOOLONG", path);
  const length = SUN_PATH_OFFSET + name.length + 1;
  const address = new Uint8Array(SUN_PATH_OFFSET + os.pathSize);
  os.family(address, length);
  address.set(name, SUN_PATH_OFFSET);

  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | os.socketFlags, 0);
  if (fd < 0) throw errnoError(libc.errno(), path);
  if (libc.connect(fd, address, length) < 0) {
    const code = libc.errno();
    libc.close(fd);
    throw errnoError(code, path);
  }
  let nextReconnect = 0;
  const reconnect = (): boolean => {
    const now = Date.now();
    if (now < nextReconnect) return false;
    nextReconnect = now + RECONNECT_INTERVAL_MS;
    return libc.connect(fd, address, length) === 0;
  };
  const trySend = (datagram: Uint8Array): boolean => libc.send(fd, datagram, datagram.length, os.sendFlags) >= 0;
  return queuedSyslogTransport({
    async send(datagram) {
      for (let waitMs = 1; !trySend(datagram); waitMs *= 2) {
        const code = libc.errno();
        if (code === "EAGAIN" || code === "ENOBUFS") {
          if (waitMs > MAX_FULL_WAIT_MS) throw errnoError(code, path);
          await new Promise((resolve) => setTimeout(resolve, waitMs));
          continue;
        }
        if (RECONNECT_ERRORS.has(code) && reconnect() && trySend(datagram)) return;
        throw errnoError(code, path);
      }
    },
    release: () => libc.close(fd),
  }, report);
}
