/**
 * The `-h` text: every option, its default, and where to read more.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { DEFAULT_CONFIG_FILE } from "./options.ts";

/** One line that points at `-h`, printed after a usage error. */
export const USAGE_HINT = "Run 'srelay -h' for the list of options.";

/** The full help text. */
export function helpText(): string {
  return `srelay ${VERSION} - SOCKS v4/v4a/v5 relay server with per-destination proxy chaining

Usage: srelay [options]

Listening
  -i ADDR            Listen on ADDR; repeat for more. Forms: HOST, HOST:PORT, :PORT,
                     [IPV6], [IPV6]:PORT. A host name listens on every address it
                     resolves to. PORT 0 picks a free port (the start-up line shows it).
                     Default: every IPv4 and IPv6 address, port 1080.
  -m NUM             At most NUM sessions at once; clients over the limit are closed at
                     once and logged. 0 = no limit (default).
  --max-per-client N At most N sessions at once from one client address (the one a
                     PROXY header names, with --proxy-protocol); more are closed at
                     once, before any SOCKS byte, with one log line a second per
                     address. IPv4-mapped IPv6 counts as IPv4; IPv6 counts per
                     address, not per /64. Per worker with --workers. 0 = no limit
                     (default).
  --max-binds N      At most N BIND requests waiting for their peer at once, whether
                     this host or a next hop listens (default 1024). One more gets
                     REP 01 (SOCKS4: CD 5B) and a log line naming the limit. Once its
                     peer is in, a BIND session is a relay like CONNECT's and no longer
                     counts. Per worker with --workers. 0 = no limit.
  --max-binds-per-client N
                     The same, per client address, counted as --max-per-client counts
                     (default 32).
  --max-udp N        At most N UDP associations at once (default 1024). One more gets
                     REP 01 and a log line naming the limit. Per worker with --workers.
                     0 = no limit.
  --max-udp-per-client N
                     The same, per client address (default 32).
  -o MINUTES         Close a session after MINUTES without traffic in either direction
                     (decimals allowed: -o 0.5 is 30 s). 0 = never (default).
  --handshake-timeout SECONDS
                     Time a client has to send its greeting and request (default 30).
  --fin-wait SECONDS After one side of a session has closed (FIN), close the session if
                     the other side is still open SECONDS later. 0 = no limit (default).
  --connect-timeout SECONDS
                     Time allowed to reach the target or the nearest next hop (default 30),
                     resolving its name included: a name with no answer in time gets
                     REP 04 (SOCKS4: CD 5B), as one the resolver gave up on. A lookup
                     never waits more than 10 s.
  --bind-timeout SECONDS
                     Time a BIND waits for its peer to connect (default 30); then the
                     client gets a failure reply and the listening port is closed.
  --workers N        Run N server processes sharing the listening ports (SO_REUSEPORT).
  --proxy-protocol   Every listener expects a PROXY protocol header, v1 or v2 (HAProxy's
                     send-proxy, send-proxy-v2), before the SOCKS bytes, and the client
                     address it carries is what -w, --rules, the login throttle, logs and
                     metrics see. A missing, malformed, oversized or truncated
                     header, or none within --handshake-timeout, closes the connection
                     with a log line, as does a header without an IP client address
                     (v1 UNKNOWN). v2 LOCAL (health checks) is closed quietly. TLVs are
                     skipped; a CRC32C TLV is checked.
  --proxy-protocol-from LIST
                     Believe headers only from these peers: addresses and subnets,
                     comma-separated (10.0.0.5,10.1.0.0/16,[fd00::]/8). Any other peer
                     is closed and logged before a byte is read. Default
                     127.0.0.0/8,::1. Implies --proxy-protocol.

Routing (srelay.conf)
  -c FILE            Route table (default ${DEFAULT_CONFIG_FILE}; a missing default file
                     means every destination is reached directly; a missing -c FILE is
                     an error). Each line: DEST PORTS [HOP [PORT[/H|/S|/4|/5]]]...,
                     hops farthest first; the first matching line wins. SIGHUP reloads it.
  -u FILE            srelay.passwd: credentials for next hops, lines HOST[/PORT] USER PASS.
                     Re-read when it changes (checked at most once a second); if it
                     becomes unreadable, the credentials read before stay in force.
  --check-config, --check
                     Check every file (-c, -u, -U, --rules, the -w tables), print the
                     effective routing table and destination rules, and exit (exit 1 on
                     errors).
  --no-route-dns     Do not resolve host names locally to match address rules.
  -g                 Send outbound connections from the local address the client
                     connected to (only for targets of the same address family);
                     BIND listens on that address too.
  -x ADDR, -J ADDR   Send outbound connections from ADDR; BIND listens on ADDR (for
                     peers of its address family).

UDP ASSOCIATE (SOCKS5)
                     The relay socket is bound on the address the client connected to
                     and takes datagrams only from the client's address, from the port
                     it declared (or, if it declared 0, the port of its first datagram);
                     replies go to that client only. Each datagram's destination is
                     checked against --rules (command udp) and routed by srelay.conf
                     (/U, /T): directly, or through the farthest hop's own association
                     when that hop is SOCKS5 (/5, /S). SOCKS4 and HTTP hops cannot carry
                     UDP: REP 07 when every destination takes such a route, otherwise
                     those datagrams are dropped. FRAG != 0 is dropped. Outbound sockets
                     follow -g and -x. The association ends with its TCP connection, or
                     after -o of silence (datagrams count as traffic). Per association:
                     one outbound socket per address family, 4 next-hop associations,
                     256 datagrams waiting for DNS or a hop. -m counts associations,
                     and --max-udp and --max-udp-per-client limit them.

Access control
  -w                 Check every client against tcp_wrappers tables (hosts_access(5),
                     daemon name srelay) before any SOCKS byte is read: a match in
                     hosts.allow admits, else a match in hosts.deny closes, else admit.
                     The tables are re-read when they change. spawn, twist and
                     @netgroup are never run: such rules are skipped with a warning.
  --hosts-allow FILE, --hosts-deny FILE
                     Read these instead of /etc/hosts.allow and /etc/hosts.deny
                     (either implies -w).
  --rules FILE       Destination rules, one per line, first match wins, no match passes:
                       pass|block [from CLIENT] [to DEST] [port P|P-Q]
                                  [command connect,bind,udp] [user NAME,...]
                     CLIENT and DEST: an address, a subnet (10.0.0.0/8, [fd00::]/8), a
                     host name or a .domain suffix. Names are resolved first and every
                     address that will be dialled is checked. A refusal gets REP 02 /
                     CD 5B and a log line naming FILE:LINE. SIGHUP reloads it.
  --allow-internal   On a listener that is not loopback (or any listener with
                     --proxy-protocol) and needs no authentication, destinations on this
                     host (127.0.0.0/8, ::1, 0.0.0.0, its own addresses, link-local incl.
                     169.254.169.254) are blocked unless a rule passes them by address.
                     This lifts that default.

Authentication
  -a ORDER           SOCKS5 methods the server accepts, in its order of preference:
                     n = none, p = user name and password (RFC 1929). -a n (default),
                     -a p, -a np, -a pn. The server picks the first of its methods the
                     client offers; if none, it answers 05 FF and closes. With -a p
                     alone, SOCKS4 and 4a are refused (they cannot carry a password).
  -U FILE            With -a p: check passwords against FILE, lines USER:HASH as
                     htpasswd -B (bcrypt) and openssl passwd -5/-6 (SHA-crypt) write
                     them. SIGHUP reloads it. Without -U, -a p checks the host's
                     accounts (/etc/passwd and /etc/shadow through crypt(3); needs
                     root, so not with --user; locked and expired accounts are refused).
                     Failed logins are answered after 1 s; 5 failures in 60 s from one
                     address (one /64 for IPv6) block it for 5 minutes.
  srelay passwd USER -U FILE
                     Add or replace USER's bcrypt line in FILE (mode 0600); the
                     password is read without echo from the terminal, or from stdin.

Process and logging
  -f                 Stay in the foreground. Without -f, srelay detaches into the
                     background, prints the child's PID and logs to syslog.
  -p FILE            Write the process ID to FILE (removed at exit). It is written before
                     --user takes effect; if NAME may not remove it, it stays behind.
  --user NAME        Once the listeners are open, become NAME for good: the real,
                     effective and saved uid and gid become NAME's (looked up in
                     /etc/passwd, or a number) and the supplementary groups are
                     cleared. If that fails, srelay stops with exit code 1. Start as root
                     to listen on ports below 1024. Files opened again later must be
                     readable by NAME: -c, -u, -U, --rules and the tcp_wrappers tables
                     (SIGHUP), and --log-file must be writable (SIGUSR1). Not with host
                     accounts (-a p without -U). With --workers, each worker switches
                     after it listens; the supervisor stays root to restart workers.
  --group NAME       With --user: this group instead of NAME's primary group.
  -r                 Resolve client addresses to names: in log lines, and, checked
                     forward, for tcp_wrappers name patterns and --rules from NAME.
  -s                 Log to syslog even in the foreground (see --syslog-address).
  --syslog-address PATH|HOST:PORT
                     Where -s and background mode send syslog lines: a Unix datagram
                     socket PATH (default /dev/log, as syslog(3) does), or a collector
                     at HOST:PORT over UDP (PORT defaults to 514; IPv6 as [ADDR]:PORT).
                     If the socket is missing, srelay warns and logs to stderr.
  --log-file FILE    Append log lines to FILE instead of stderr or syslog.
  --log-format text|json
                     text (default, srelay style) or one JSON object per line.
  --log-level LEVEL  trace, debug, info (default), warning, error or fatal.
  --io native|node   Socket layer: the runtime's own (default) or node:net.
  -t                 Accepted for compatibility (srelay's "no threads"); no effect.
  -b                 Let BIND listen on a requested port below 1024 (without -b such a
                     port is replaced by a free port of 1024 or above).
  -v, -V             Print the version and exit.
  -h, -?             Print this help and exit.

Monitoring
  --metrics HOST:PORT
                     Serve Prometheus metrics at http://HOST:PORT/metrics (sessions,
                     bytes, datagrams, logins, denials, failures by reply, handshake
                     and connect times, open sockets, memory) and a health check at
                     /healthz: 200 while accepting, 503 while draining after SIGTERM.
                     :PORT serves every address. With --workers the supervisor serves
                     it and adds up all workers. No authentication: bind it to an
                     address only your monitoring can reach.

Signals
  SIGHUP             Reload -c, -u, -U, --rules and the tcp_wrappers tables into one new
                     policy; if any file has errors, all are rejected and the old
                     policy stays in force.
  SIGUSR1            Close and reopen --log-file (after log rotation); SIGHUP does too
                     when the file was renamed or removed.
  SIGTERM, SIGINT    Stop accepting, let running sessions finish (up to --grace SECONDS,
                     default 10), then exit 0.

Examples
  srelay -f -i 127.0.0.1:1080
  curl --socks5-hostname 127.0.0.1:1080 https://example.org/
  srelay -f -i :0 -o 15 -c ./srelay.conf -u ./srelay.passwd
  srelay passwd alice -U /etc/srelay.users
  srelay -i :1080 -a p -U /etc/srelay.users -w --rules /etc/srelay.rules
  curl --socks5-hostname alice:PASSWORD@jumphost:1080 https://intranet.example/

Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 usage error.
`;
}
