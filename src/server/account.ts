/**
 * Stage 7, account: one record per session, filled in as the stages go, that
 * feeds the session's log lines and, at its end, every `SessionRecorder`
 * (metrics plug in there).
 *
 * Logging never sits on the data path: with `-r` the client's label (its
 * reverse-resolved name) may still be pending; lines wait for it in order
 * while the session goes on routing, dialling and relaying.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { emitTemplate } from "../log/template_emitter.ts";
import type { FailureReason } from "../protocol/reply.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import type { NetAddress } from "../runtime/types.ts";
import type { RelayOutcome } from "../io/relay.ts";
import { COMMAND_TAG, type SessionRequest } from "./request.ts";
import { formatAddress } from "./session_context.ts";

/** How a session ended, for its record. */
export type SessionOutcome =
  | RelayOutcome
  | "failed"
  | "client_gone"
  | "handshake_failed"
  | "denied"
  | (string & Record<never, never>);

/** Everything known about one finished session. */
export interface SessionRecord {
  readonly id: number;
  readonly client: NetAddress;
  /** `4`, `4a`, `5`, or empty when the handshake did not get that far. */
  readonly version: string;
  /** `connect`, `bind`, `udp`, or empty. */
  readonly command: string;
  readonly target: string;
  readonly user: string;
  /** `direct`, `relay=h:p,...`, or empty. */
  readonly route: string;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Seconds from accept to the end. */
  readonly seconds: number;
  readonly outcome: SessionOutcome;
  /** The reply reason for a failed request. */
  readonly reason?: FailureReason;
  /** BIND: the address the peer was told to connect to (ours, or the farthest hop's). */
  readonly listen?: string;
  /** BIND: the peer that connected. */
  readonly peer?: string;
  /** UDP ASSOCIATE: datagrams relayed from the client (`bytesUp` counts their payload). */
  readonly datagramsUp?: number;
  /** UDP ASSOCIATE: datagrams relayed to the client (`bytesDown` counts their payload). */
  readonly datagramsDown?: number;
  /** UDP ASSOCIATE: dropped datagrams by reason. */
  readonly drops?: Readonly<Record<string, number>>;
  /** How the client authenticated (`none`, `password`, `userid`), or empty when it did not get that far. */
  readonly authMethod?: string;
  /** Seconds from accept until the request was read (greeting and authentication included). */
  readonly handshakeSeconds?: number;
  /** CONNECT: seconds from the request until the target (or the chain to it) was connected. */
  readonly connectSeconds?: number;
}

/** Receives each finished session's record (metrics, tests). */
export type SessionRecorder = (record: SessionRecord) => void;

type Level = "debug" | "info" | "warn" | "error";

const LOG_LEVEL = { debug: "debug", info: "info", warn: "warning", error: "error" } as const;
type Fields = Record<string, unknown>;

const ATYP_TEXT = { ipv4: "ipv4", ipv6: "ipv6", domain: "fqdn" } as const;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The record of one session and the lines it logs. */
export class SessionAccount {
  readonly #logger: Logger;
  readonly #recorders: readonly SessionRecorder[];
  readonly #id: number;
  readonly #started = performance.now();
  #client: NetAddress;
  #label: string | undefined;
  #pending: Array<() => void> | null = null;
  #request: SessionRequest | undefined;
  #user = "";
  #route = "";
  #done = false;
  #authMethod = "";
  /** `performance.now()` when the request was read, or -1. */
  #requestAt = -1;
  #connectSeconds: number | undefined;
  /** UDP ASSOCIATE's counts for the record. */
  #udp: Pick<SessionRecord, "datagramsUp" | "datagramsDown" | "drops"> | undefined;

  /** `client` is the peer's address, named as `host:port` until `setClient` says otherwise. */
  constructor(logger: Logger, recorders: readonly SessionRecorder[], id: number, client: NetAddress) {
    this.#logger = logger;
    this.#recorders = recorders;
    this.#id = id;
    this.#client = client;
  }

  /** The session's number. */
  get id(): number {
    return this.#id;
  }

  /**
   * The client as admitted (a PROXY header may have replaced the address);
   * `label` is its log label, or a promise of it (`-r`).
   */
  setClient(client: NetAddress, label: string | Promise<string>): void {
    this.#client = client;
    if (typeof label === "string") {
      this.#label = label;
      return;
    }
    this.#label = undefined;
    this.#pending = [];
    label.then((text) => {
      this.#label = text;
      const pending = this.#pending ?? [];
      this.#pending = null;
      for (const emit of pending) emit();
    });
  }

  /** The request, once decoded. */
  setRequest(request: SessionRequest, user: string): void {
    this.#request = request;
    this.#user = user;
    this.#requestAt = performance.now();
  }

  /** How the client got in (`password` after a successful RFC 1929 login), for the record. */
  authenticated(method: string): void {
    this.#authMethod = method;
  }

  /** CONNECT: the target (or the chain to it) is connected; the record gets the time since the request. */
  connected(): void {
    if (this.#requestAt >= 0) this.#connectSeconds = (performance.now() - this.#requestAt) / 1000;
  }

  /** Seconds since the session started, as logged (`0.123`). */
  seconds(): string {
    return ((performance.now() - this.#started) / 1000).toFixed(3);
  }

  /** Logs the routed request: `{client} 5-CON host:port(fqdn) user route`. */
  requested(route: string): void {
    this.#route = route;
    const request = this.#request as SessionRequest;
    this.#log("info", "{client} {version}-{command} {target}({atyp}) {user} {route}", {
      ...this.#requestFields(),
      atyp: ATYP_TEXT[request.target.kind],
      user: this.#user === "" ? "-" : this.#user,
      route,
    });
  }

  /** The request failed with `reason`: logs it and ends the record. */
  failed(reason: FailureReason, error: unknown): void {
    this.#log("warn", "{client} {version}-{command} {target} {route} failed: {reason}: {error} time={seconds}s", {
      ...this.#requestFields(),
      route: this.#route === "" ? "-" : this.#route,
      reason,
      error: errorText(error),
      seconds: this.seconds(),
      outcome: "failed",
    });
    this.#end("failed", 0, 0, reason);
  }

  /** The client left while its request was being served (`when`: before the reply, by default). */
  clientGone(when = "before the reply"): void {
    this.#log("info", `{client} {version}-{command} {target} {route}: client left ${when}`, {
      ...this.#requestFields(),
      route: this.#route,
      outcome: "client_gone",
    });
    this.#end("client_gone", 0, 0);
  }

  /** The relay is over: logs bytes, time and outcome, and ends the record. */
  finished(
    bound: Target,
    result: { bytesUp: number; bytesDown: number; outcome: SessionOutcome; error?: Error },
  ): void {
    const detail = result.error === undefined ? "" : ` (${result.error.message})`;
    this.#log(
      "info",
      "{client} {version}-{command} {target} {route} bound={bound} up={bytesUp} down={bytesDown} time={seconds}s {outcome}{detail}",
      {
        ...this.#requestFields(),
        route: this.#route,
        bound: formatTarget(bound),
        bytesUp: result.bytesUp,
        bytesDown: result.bytesDown,
        seconds: this.seconds(),
        outcome: result.outcome,
        detail,
      },
    );
    this.#end(result.outcome, result.bytesUp, result.bytesDown);
  }

  /**
   * BIND: a connection to the listener came from `peer`, which is not the
   * expected peer; it was closed and the listener goes on waiting.
   */
  peerRefused(peer: NetAddress, listen: Target): void {
    this.#log(
      "warn",
      "{client} {version}-{command} {target} {route}: refused a connection from {peer} to {listen}: not the expected peer; still waiting",
      {
        ...this.#requestFields(),
        route: this.#route,
        peer: formatAddress(peer),
        listen: formatTarget(listen),
      },
    );
  }

  /** BIND's relay is over: like `finished`, naming the listen address and the peer instead of `bound`. */
  bindFinished(
    listen: Target,
    peer: Target,
    result: { bytesUp: number; bytesDown: number; outcome: SessionOutcome; error?: Error },
  ): void {
    const detail = result.error === undefined ? "" : ` (${result.error.message})`;
    const fields = { listen: formatTarget(listen), peer: formatTarget(peer) };
    this.#log(
      "info",
      "{client} {version}-{command} {target} {route} listen={listen} peer={peer} up={bytesUp} down={bytesDown} time={seconds}s {outcome}{detail}",
      {
        ...this.#requestFields(),
        route: this.#route,
        ...fields,
        bound: fields.listen,
        bytesUp: result.bytesUp,
        bytesDown: result.bytesDown,
        seconds: this.seconds(),
        outcome: result.outcome,
        detail,
      },
    );
    this.#end(result.outcome, result.bytesUp, result.bytesDown, undefined, fields);
  }

  /**
   * UDP ASSOCIATE: the first datagram dropped for `reason` (later ones are
   * only counted, and summed up in the session's last line).
   */
  datagramDropped(reason: string, detail: string): void {
    this.#log(
      "warn",
      "{client} {version}-{command} {target} {route}: dropped a datagram ({reason}): {detail}; further drops for this reason are only counted",
      { ...this.#requestFields(), route: this.#route, reason, detail },
    );
  }

  /** UDP ASSOCIATE: something about the association worth a line (a next hop that failed). */
  associationNote(message: string): void {
    this.#log("warn", "{client} {version}-{command} {target} {route}: {message}", {
      ...this.#requestFields(),
      route: this.#route,
      message,
    });
  }

  /**
   * UDP ASSOCIATE is over: like `finished`, with payload bytes each way, the
   * datagram counts and the drops by reason
   * (`... bound=127.0.0.1:41356 up=1400 down=1400 datagrams=1/1 drops=fragmented:1,foreign_source:2 time=3.200s done`).
   */
  associationFinished(
    bound: Target,
    result: {
      bytesUp: number;
      bytesDown: number;
      datagramsUp: number;
      datagramsDown: number;
      drops: Readonly<Partial<Record<string, number>>>;
      outcome: SessionOutcome;
      error?: Error;
    },
  ): void {
    const detail = result.error === undefined ? "" : ` (${result.error.message})`;
    const drops: Record<string, number> = {};
    for (const [reason, count] of Object.entries(result.drops)) if (count !== undefined) drops[reason] = count;
    const reasons = Object.keys(drops).sort();
    const dropText = reasons.length === 0 ? "0" : reasons.map((reason) => `${reason}:${drops[reason]}`).join(",");
    this.#log(
      "info",
      "{client} {version}-{command} {target} {route} bound={bound} up={bytesUp} down={bytesDown} datagrams={datagramsUp}/{datagramsDown} drops={dropText} time={seconds}s {outcome}{detail}",
      {
        ...this.#requestFields(),
        route: this.#route,
        bound: formatTarget(bound),
        bytesUp: result.bytesUp,
        bytesDown: result.bytesDown,
        datagramsUp: result.datagramsUp,
        datagramsDown: result.datagramsDown,
        drops,
        dropText,
        seconds: this.seconds(),
        outcome: result.outcome,
        detail,
      },
    );
    this.#udp = { datagramsUp: result.datagramsUp, datagramsDown: result.datagramsDown, drops };
    this.#end(result.outcome, result.bytesUp, result.bytesDown);
  }

  /** A stage refused the client on purpose: `{client} {tag}: {message}`, at `level`. */
  refused(tag: string, outcome: string, message: string, level: "warn" | "debug" = "warn"): void {
    this.#log(level, "{client} {tag}: {message}", {
      session: this.#id,
      client: "",
      tag,
      message,
      user: this.#user,
      outcome,
    });
    this.#end(outcome, 0, 0);
  }

  /** The admit stage refused the client before any SOCKS byte (at `level`: `debug` for a repeat). */
  denied(outcome: string, reason: string, level: "warn" | "debug" = "warn"): void {
    this.#log(level, "{client} denied: {reason}", { session: this.#id, client: "", reason, outcome });
    this.#end(outcome, 0, 0);
  }

  /** The handshake failed (bad bytes, timeout, client gone); `quiet` logs it at info level. */
  handshakeFailed(error: unknown, quiet: boolean): void {
    this.#log(quiet ? "info" : "warn", "{client} handshake failed: {reason}", {
      session: this.#id,
      client: "",
      reason: errorText(error),
      outcome: "handshake_failed",
    });
    this.#end("handshake_failed", 0, 0);
  }

  /**
   * Something failed that no stage expected (a bug, not bad input): logged
   * at error level with the error's class and where it was thrown, so it
   * cannot pass for an ordinary bad handshake.
   */
  internalError(error: unknown): void {
    const where = error instanceof Error ? error.stack?.split("\n").find((line) => /^\s+at /.test(line))?.trim() : "";
    this.#log("error", "{client} internal error: {reason}{where}", {
      session: this.#id,
      client: "",
      reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      where: where ? ` (${where})` : "",
      outcome: "internal_error",
    });
    this.#end("internal_error", 0, 0);
  }

  #requestFields(): Fields {
    const request = this.#request as SessionRequest;
    return {
      session: this.#id,
      client: "",
      version: request.version,
      command: COMMAND_TAG[request.command],
      target: formatTarget(request.target),
      user: this.#user,
    };
  }

  /** Logs now, or once the label is known; `fields.client` is filled in with the label. */
  #log(level: Level, template: string, fields: Fields): void {
    const emit = () => {
      fields.client = this.#label ?? formatAddress(this.#client);
      emitTemplate(this.#logger, LOG_LEVEL[level], template, fields);
    };
    if (this.#pending === null) emit();
    else this.#pending.push(emit);
  }

  #end(
    outcome: SessionOutcome,
    bytesUp: number,
    bytesDown: number,
    reason?: FailureReason,
    bind?: { readonly listen: string; readonly peer: string },
  ): void {
    if (this.#done || this.#recorders.length === 0) {
      this.#done = true;
      return;
    }
    this.#done = true;
    const request = this.#request;
    const record: SessionRecord = {
      id: this.#id,
      client: this.#client,
      version: request?.version ?? "",
      command: request?.command ?? "",
      target: request === undefined ? "" : formatTarget(request.target),
      user: this.#user,
      route: this.#route,
      bytesUp,
      bytesDown,
      seconds: (performance.now() - this.#started) / 1000,
      outcome,
      ...(reason === undefined ? {} : { reason }),
      ...bind,
      ...this.#udp,
      authMethod: this.#authMethod,
      ...(this.#requestAt < 0 ? {} : { handshakeSeconds: (this.#requestAt - this.#started) / 1000 }),
      ...(this.#connectSeconds === undefined ? {} : { connectSeconds: this.#connectSeconds }),
    };
    for (const recorder of this.#recorders) recorder(record);
  }
}
