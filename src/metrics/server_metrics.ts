/**
 * srelay's metric set (`--metrics`), fed by one `SessionRecorder`: every
 * counter and histogram is updated once, when a session ends, from its
 * record. Nothing is counted per chunk or per datagram, so the relay's data
 * path costs exactly what it did without metrics; bytes and datagrams of a
 * session show up when it ends. Gauges (active sessions, memory, open
 * descriptors) are read when a scrape asks for them.
 *
 * @module
 */
import { readdirSync, readlinkSync } from "node:fs";
import process from "node:process";
import type { SessionRecord, SessionRecorder } from "../server/account.ts";
import { type Counter, type CounterChild, type Histogram, type MetricFamily, Registry } from "./registry.ts";

/** Bucket bounds (seconds) of the handshake and connect histograms: 0.5 ms to 30 s. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** What the metrics read from the running server at each scrape. */
export interface ServerReadings {
  /** Sessions in progress. */
  activeSessions(): number;
  /** Clients closed at once by `-m`, since the start. */
  rejectedSessions(): number;
}

/** Process figures read at each scrape; null when the platform cannot say. */
export interface ProcessReadings {
  residentBytes(): number;
  /** Open descriptors and, of those, sockets (Linux `/proc/self/fd`). */
  descriptors(): { readonly open: number; readonly sockets: number } | null;
}

/** Process figures from `process.memoryUsage` and `/proc/self/fd`. */
export const PROCESS_READINGS: ProcessReadings = {
  residentBytes: () => process.memoryUsage().rss,
  descriptors() {
    let names: string[];
    try {
      names = readdirSync("/proc/self/fd");
    } catch {
      return null;
    }
    let sockets = 0;
    for (const name of names) {
      try {
        if (readlinkSync(`/proc/self/fd/${name}`).startsWith("socket:")) sockets++;
      } catch {
        // Closed between the listing and the look (the listing's own descriptor, for one).
      }
    }
    return { open: names.length, sockets };
  },
};

/**
 * The route kind of a record's route: `direct`, `relay` (through next hops),
 * `per_datagram` (UDP ASSOCIATE routed per destination), or `none` (the
 * session ended before it was routed).
 */
export function routeKind(route: string): string {
  if (route === "") return "none";
  if (route === "direct") return "direct";
  if (route.startsWith("relay=")) return "relay";
  if (route === "per-datagram") return "per_datagram";
  return "other";
}

/** Refusal outcomes that answered the request with a failure reply, and that reply's reason. */
const REFUSAL_REPLY: Readonly<Record<string, string>> = {
  not_allowed: "not_allowed",
  command_not_supported: "command_not_supported",
  too_many_associations: "general_failure",
  too_many_binds: "general_failure",
};

/** Outcomes of the password stage, and the `result` label each one counts as. */
const AUTH_RESULT: Readonly<Record<string, string>> = {
  auth_failed: "failure",
  auth_throttled: "throttled",
  auth_unavailable: "unavailable",
};

/** Outcomes of clients refused by access control, and the `by` label. */
const DENIED_BY: Readonly<Record<string, string>> = {
  denied_by_tcp_wrappers: "tcp_wrappers",
  not_allowed: "rules",
};

/** The srelay metrics of one process, and the recorder that feeds them. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #sessions: Counter;
  readonly #bytes: Counter;
  readonly #datagrams: Counter;
  readonly #drops: Counter;
  readonly #auth: Counter;
  readonly #denied: Counter;
  readonly #failures: Counter;
  readonly #handshake: Histogram;
  readonly #connect: Histogram;
  /** Children used for every session, looked up once. */
  readonly #passwordOk: CounterChild;
  readonly #datagramsUp: CounterChild;
  readonly #datagramsDown: CounterChild;

  /** `server` is null in the `--workers` supervisor, which has no sessions of its own. */
  constructor(server: ServerReadings | null, readings: ProcessReadings = PROCESS_READINGS) {
    const r = this.registry;
    const active = r.gauge("srelay_sessions_active", "Sessions in progress (a UDP association is one).");
    this.#sessions = r.counter(
      "srelay_sessions_total",
      "Finished sessions by command (connect, bind, udp; none: ended before a request), route kind (direct, relay, per_datagram, none) and outcome.",
      ["command", "route", "outcome"],
    );
    const overLimit = r.counter(
      "srelay_sessions_over_limit_total",
      "Clients closed at once because -m sessions were already running.",
    );
    this.#bytes = r.counter(
      "srelay_relayed_bytes_total",
      "Payload bytes relayed by finished sessions, by command and direction (up: client to target, down: target to client).",
      ["command", "direction"],
    );
    this.#datagrams = r.counter(
      "srelay_udp_datagrams_total",
      "UDP datagrams relayed by finished associations, by direction (up: from the client, down: to the client).",
      ["direction"],
    );
    this.#drops = r.counter(
      "srelay_udp_dropped_datagrams_total",
      "UDP datagrams dropped by finished associations, by reason.",
      ["reason"],
    );
    this.#auth = r.counter(
      "srelay_auth_attempts_total",
      "RFC 1929 logins by result: success, failure (unknown user, wrong password, locked or expired), throttled (address blocked), unavailable (user database unavailable or busy).",
      ["result"],
    );
    this.#denied = r.counter(
      "srelay_clients_denied_total",
      "Clients refused by access control: tcp_wrappers (-w) before any SOCKS byte, or rules (--rules and the default block of this host's own addresses).",
      ["by"],
    );
    this.#failures = r.counter(
      "srelay_request_failures_total",
      "Requests answered with a failure reply, by command and reason (each reason is one SOCKS5 REP code; SOCKS4 clients get CD 5B).",
      ["command", "reason"],
    );
    this.#handshake = r.histogram(
      "srelay_handshake_duration_seconds",
      "Time from accepting a client until its request was read (greeting and authentication included).",
      DURATION_BUCKETS,
    );
    this.#connect = r.histogram(
      "srelay_connect_duration_seconds",
      "CONNECT: time from the request until the target, or the chain of next hops to it, was connected (rules, DNS and dial included; successful connects only).",
      DURATION_BUCKETS,
    );
    const resident = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    const descriptors = readings.descriptors() === null ? null : {
      open: r.gauge("process_open_fds", "Open file descriptors."),
      sockets: r.gauge("srelay_open_sockets", "Open sockets (listening, client, target and UDP)."),
    };
    // Series that exist from the start, at 0, so that rates over them work from the first scrape.
    for (const command of ["connect", "bind", "udp"]) {
      this.#bytes.labels(command, "up");
      this.#bytes.labels(command, "down");
    }
    this.#passwordOk = this.#auth.labels("success");
    for (const result of Object.values(AUTH_RESULT)) this.#auth.labels(result);
    for (const by of Object.values(DENIED_BY)) this.#denied.labels(by);
    this.#datagramsUp = this.#datagrams.labels("up");
    this.#datagramsDown = this.#datagrams.labels("down");
    r.beforeCollect(() => {
      if (server !== null) {
        active.set(server.activeSessions());
        overLimit.labels().value = server.rejectedSessions();
      }
      resident.set(readings.residentBytes());
      if (descriptors !== null) {
        const now = readings.descriptors();
        if (now !== null) {
          descriptors.open.set(now.open);
          descriptors.sockets.set(now.sockets);
        }
      }
    });
  }

  /** The recorder to put in the server's scope. */
  readonly recorder: SessionRecorder = (record) => this.record(record);

  /** Counts one finished session. */
  record(record: SessionRecord): void {
    const command = record.command === "" ? "none" : record.command;
    const { outcome } = record;
    this.#sessions.labels(command, routeKind(record.route), outcome).inc();
    if (record.bytesUp > 0) this.#bytes.labels(command, "up").inc(record.bytesUp);
    if (record.bytesDown > 0) this.#bytes.labels(command, "down").inc(record.bytesDown);
    if (record.datagramsUp !== undefined) this.#datagramsUp.inc(record.datagramsUp);
    if (record.datagramsDown !== undefined) this.#datagramsDown.inc(record.datagramsDown);
    if (record.drops !== undefined) {
      for (const reason in record.drops) this.#drops.labels(reason).inc(record.drops[reason]);
    }
    if (record.authMethod === "password") this.#passwordOk.inc();
    const auth = AUTH_RESULT[outcome];
    if (auth !== undefined) this.#auth.labels(auth).inc();
    const denied = DENIED_BY[outcome];
    if (denied !== undefined) this.#denied.labels(denied).inc();
    const reason = record.reason ?? REFUSAL_REPLY[outcome];
    if (reason !== undefined) this.#failures.labels(command, reason).inc();
    if (record.handshakeSeconds !== undefined) this.#handshake.observe(record.handshakeSeconds);
    if (record.connectSeconds !== undefined) this.#connect.observe(record.connectSeconds);
  }

  /** Every metric's samples, gauges read now. */
  collect(): MetricFamily[] {
    return this.registry.collect();
  }
}
