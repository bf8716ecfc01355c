/**
 * Maps the errors of every runtime's socket API onto `NetError` codes.
 *
 * Bun and node:net errors carry an errno string in `code` (`ECONNREFUSED`);
 * Deno errors are classes of `Deno.errors` (matched by `name`, so this file
 * needs no Deno types) and usually carry the errno string too. The original
 * error is kept as `cause`.
 *
 * @module
 */
import { NetError, type NetErrorCode } from "./types.ts";

const ERRNO_CODES: Readonly<Record<string, NetErrorCode>> = {
  ECONNREFUSED: "refused",
  EHOSTUNREACH: "host_unreachable",
  EHOSTDOWN: "host_unreachable",
  ENETUNREACH: "net_unreachable",
  ENETDOWN: "net_unreachable",
  ETIMEDOUT: "timeout",
  ECONNRESET: "reset",
  ECONNABORTED: "reset",
  EPIPE: "reset",
  ENOTFOUND: "not_found",
  EADDRINUSE: "address_in_use",
  EADDRNOTAVAIL: "address_not_available",
  EACCES: "permission_denied",
  EPERM: "permission_denied",
  ABORT_ERR: "aborted",
  ERR_SOCKET_CLOSED: "closed",
  ERR_STREAM_DESTROYED: "closed",
  ENOTCONN: "closed",
  EBADF: "closed",
};

const ERROR_NAMES: Readonly<Record<string, NetErrorCode>> = {
  ConnectionRefused: "refused",
  ConnectionReset: "reset",
  ConnectionAborted: "reset",
  BrokenPipe: "reset",
  NetworkUnreachable: "net_unreachable",
  AddrInUse: "address_in_use",
  AddrNotAvailable: "address_not_available",
  TimedOut: "timeout",
  PermissionDenied: "permission_denied",
  NotCapable: "permission_denied",
  NotFound: "not_found",
  Interrupted: "aborted",
  AbortError: "aborted",
  TimeoutError: "timeout",
  BadResource: "closed",
  NotConnected: "closed",
};

/** Texts for errno values that map to `other` but deserve a clear message. */
const OTHER_DESCRIPTIONS: Readonly<Record<string, string>> = {
  EMFILE: "too many open files (the process's descriptor limit)",
  ENFILE: "too many open files in the system",
  ENOMEM: "out of memory",
  ENOBUFS: "no buffer space available",
  EMSGSIZE: "datagram too large",
  EAFNOSUPPORT: "address family not supported by this socket",
  EINVAL: "invalid argument",
};

const DESCRIPTIONS: Readonly<Record<NetErrorCode, string>> = {
  refused: "connection refused",
  host_unreachable: "host unreachable",
  net_unreachable: "network unreachable",
  timeout: "timed out",
  reset: "connection reset",
  not_found: "name not found",
  address_in_use: "address already in use",
  address_not_available: "address not available",
  permission_denied: "permission denied",
  aborted: "aborted",
  closed: "connection closed",
  other: "unexpected error",
};

/** Finds the `NetErrorCode` for a runtime error (`other` when unknown). */
export function netErrorCode(error: unknown): NetErrorCode {
  if (error instanceof NetError) return error.code;
  if (typeof error !== "object" || error === null) return "other";
  const { code, name, message } = error as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === "string") {
    const mapped = ERRNO_CODES[code];
    if (mapped) return mapped;
    if (code.startsWith("EAI_")) return "not_found";
  }
  if (typeof name === "string") {
    const mapped = ERROR_NAMES[name];
    if (mapped) return mapped;
  }
  if (typeof message === "string") {
    const lower = message.toLowerCase();
    if (lower.includes("network is unreachable")) return "net_unreachable";
    if (lower.includes("unreachable") || lower.includes("no route to host")) {
      return "host_unreachable";
    }
  }
  return "other";
}

/**
 * Wraps a runtime error in a `NetError` whose message says what failed:
 * `toNetError(e, "connect to 127.0.0.1:9")` gives
 * "Cannot connect to 127.0.0.1:9: connection refused". A `NetError` is
 * returned unchanged.
 */
export function toNetError(error: unknown, action: string): NetError {
  if (error instanceof NetError) return error;
  const code = netErrorCode(error);
  const detail = code === "other" ? describeOther(error) : DESCRIPTIONS[code];
  return new NetError(code, `Cannot ${action}: ${detail}`, { cause: error });
}

/**
 * The error an aborted operation rejects with: the signal's reason when it
 * is a `NetError` (so a caller can abort with its own code), a `NetError` of
 * code `timeout` for an `AbortSignal.timeout()` signal, otherwise a
 * `NetError` of code `aborted`.
 */
export function abortError(signal: { readonly reason: unknown }, action: string): NetError {
  const reason: unknown = signal.reason;
  if (reason instanceof NetError) return reason;
  const code = isTimeoutReason(reason) ? "timeout" : "aborted";
  return new NetError(code, `Cannot ${action}: ${DESCRIPTIONS[code]}`, { cause: reason });
}

/** What a connect that ran out of `ConnectOptions.timeoutMs` rejects with. */
export function connectTimeoutError(action: string, timeoutMs: number): NetError {
  return new NetError("timeout", `Cannot ${action}: no connection within ${timeoutMs} ms`);
}

function isTimeoutReason(reason: unknown): boolean {
  return typeof reason === "object" && reason !== null &&
    (reason as { name?: unknown }).name === "TimeoutError";
}

function describeOther(error: unknown): string {
  const errno = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  const known = typeof errno === "string" ? OTHER_DESCRIPTIONS[errno] : undefined;
  if (known !== undefined) return known;
  if (error instanceof Error && error.message) return error.message;
  return String(error);
}
