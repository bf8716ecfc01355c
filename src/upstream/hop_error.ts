/**
 * The error every failure at or behind a next hop is reported with.
 *
 * A `HopError` names the hop (`host:port`) and carries the protocol-neutral
 * `FailureReason` the server answers its client with. The helpers here turn
 * the low-level failures a connector meets (a `NetError` while dialling or
 * reading, a `ProtocolError` from a decoder) into a `HopError` with a message
 * that says which hop failed, during what, and why.
 *
 * @module
 */
import { ProtocolError } from "../protocol/decoded.ts";
import { failureForNetError, type FailureReason } from "../protocol/reply.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import { NetError } from "../runtime/types.ts";

/** A failure at or behind a next hop. */
export class HopError extends Error {
  /** The hop that failed, as `host:port` (`[v6]:port` for IPv6 literals). */
  readonly hop: string;
  /** What the server reports to its client. */
  readonly reason: FailureReason;
  constructor(hop: string, reason: FailureReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HopError";
    this.hop = hop;
    this.reason = reason;
  }
}

/** A next hop as connectors name it in errors. */
export interface HopLabel {
  /** `host:port` of the hop (`[v6]:port` for IPv6 literals). */
  readonly name: string;
  /** The protocol spoken to it: `socks5`, `socks4` or `http`. */
  readonly protocol: string;
}

/**
 * A request that cannot be put to a hop at all (the encoder refused the
 * target, e.g. a name longer than 255 bytes), with the encoder's reason.
 */
export function hopRequestError(
  hop: HopLabel,
  target: Target,
  reason: FailureReason,
  error: unknown,
): HopError {
  return new HopError(
    hop.name,
    reason,
    `${describeHop(hop)} cannot be asked for ${formatTarget(target)}: ${errorText(error)}`,
    { cause: error },
  );
}

/** Formats a hop for messages: `Next hop fw:8080 (http)`. */
export function describeHop(hop: HopLabel): string {
  return `Next hop ${hop.name} (${hop.protocol})`;
}

/**
 * Wraps a failure to open the TCP connection to the nearest hop, keeping the
 * network error's reason.
 */
export function hopDialError(hop: HopLabel, error: unknown): HopError {
  if (error instanceof HopError) return error;
  const reason = error instanceof NetError ? failureForNetError(error) : "general_failure";
  return new HopError(
    hop.name,
    reason,
    `${describeHop(hop)} is unreachable: ${errorText(error)}`,
    { cause: error },
  );
}

/**
 * Wraps a failure met while speaking to a hop during `stage` (e.g. "the SOCKS5
 * greeting"): a hop that closes or sends garbage is a general failure, one
 * that does not answer in time is `ttl_expired`.
 */
export function hopHandshakeError(hop: HopLabel, stage: string, error: unknown): HopError {
  if (error instanceof HopError) return error;
  if (error instanceof ProtocolError) {
    return new HopError(
      hop.name,
      "general_failure",
      `${describeHop(hop)} sent a malformed answer to ${stage}: ${error.message}`,
      { cause: error },
    );
  }
  if (error instanceof NetError) {
    const detail = error.code === "closed"
      ? "closed the connection"
      : error.code === "timeout"
      ? "did not answer in time"
      : `failed: ${error.message}`;
    return new HopError(
      hop.name,
      error.code === "timeout" ? "ttl_expired" : failureForNetError(error),
      `${describeHop(hop)} ${detail} during ${stage}`,
      { cause: error },
    );
  }
  return new HopError(
    hop.name,
    "general_failure",
    `${describeHop(hop)} failed during ${stage}: ${errorText(error)}`,
    { cause: error },
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
