/**
 * Client side of HTTP CONNECT toward a next hop (an HTTP proxy).
 *
 * Sends `CONNECT host:port` (IPv6 bracketed, names unresolved) with
 * `Proxy-Authorization: Basic` when srelay.passwd has credentials for the
 * hop. Any 2xx opens the tunnel; bytes after the response head already
 * belong to it and stay in the inbox. An HTTP proxy reports no bound
 * address, so `bound` is our local address toward the nearest hop, as
 * srelay reports its own local address.
 *
 * Status mapping: 407 and 403 are `not_allowed`, 504 `ttl_expired`, 502 and
 * 503 `host_unreachable`, anything else `general_failure`.
 *
 * @module
 */
import {
  decodeHttpConnectResponse,
  encodeHttpConnectRequest,
  type HttpConnectResponse,
} from "../protocol/http_connect.ts";
import type { FailureReason } from "../protocol/reply.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import { type Connector, type Credentials, targetFromAddress } from "./dialer.ts";
import { describeHop, HopError, hopHandshakeError, type HopLabel, hopRequestError } from "./hop_error.ts";

/** Options for `httpConnector`. */
export interface HttpConnectorOptions {
  /** The hop's `host:port`, for error messages. */
  readonly hop: string;
  /** Credentials for the hop (srelay.passwd), asked for at each connect; `null` when there are none. */
  readonly credentials?: () => Credentials | null;
}

/** The failure an HTTP status other than 2xx stands for. */
export function failureForHttpStatus(status: number): FailureReason {
  switch (status) {
    case 403:
    case 407:
      return "not_allowed";
    case 502:
    case 503:
      return "host_unreachable";
    case 504:
      return "ttl_expired";
    default:
      return "general_failure";
  }
}

/** Creates a connector that speaks HTTP CONNECT to a next hop. */
export function httpConnector(options: HttpConnectorOptions): Connector {
  const label: HopLabel = { name: options.hop, protocol: "http" };

  return {
    async connect(connection, inbox, target: Target, signal) {
      const credentials = options.credentials?.() ?? null;
      let request: Uint8Array;
      try {
        request = encodeHttpConnectRequest(target, credentials === null ? {} : { credentials });
      } catch (error) {
        throw hopRequestError(label, target, "general_failure", error);
      }
      connection.write(request);
      let response: HttpConnectResponse;
      try {
        response = await inbox.read(decodeHttpConnectResponse, signal);
      } catch (error) {
        throw hopHandshakeError(label, "the HTTP CONNECT request", error);
      }
      if (response.status < 200 || response.status > 299) {
        const status = `HTTP ${response.status}${response.reason === "" ? "" : ` ${response.reason}`}`;
        const hint = response.status === 407
          ? credentials === null
            ? " (it needs credentials: add it to srelay.passwd)"
            : ` (credentials for ${credentials.username} were rejected)`
          : "";
        throw new HopError(
          label.name,
          failureForHttpStatus(response.status),
          `${describeHop(label)} refused CONNECT to ${formatTarget(target)}: ${status}${hint}`,
        );
      }
      return { bound: targetFromAddress(connection.local) };
    },
  };
}
