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
  -o MINUTES         Close a session after MINUTES without traffic in either direction
                     (decimals allowed: -o 0.5 is 30 s). 0 = never (default).
  --handshake-timeout SECONDS
                     Time a client has to send its greeting and request (default 30).
  --fin-wait SECONDS After one side of a session has closed (FIN), close the session if
                     the other side is still open SECONDS later. 0 = no limit (default).
  --connect-timeout SECONDS
                     Time allowed to reach the target or the nearest next hop (default 30).
  --workers N        Run N server processes sharing the listening ports (SO_REUSEPORT).

Routing (srelay.conf)
  -c FILE            Route table (default ${DEFAULT_CONFIG_FILE}; a missing default file
                     means every destination is reached directly; a missing -c FILE is
                     an error). Each line: DEST PORTS [HOP [PORT[/H|/S|/4|/5]]]...,
                     hops farthest first; the first matching line wins. SIGHUP reloads it.
  -u FILE            srelay.passwd: credentials for next hops, lines HOST[/PORT] USER PASS.
                     Re-read when it changes.
  --check-config, --check
                     Parse -c FILE, print the effective routing table and exit
                     (exit 1 if it has errors).
  --no-route-dns     Do not resolve host names locally to match address rules.
  -g                 Send outbound connections from the local address the client
                     connected to (only for targets of the same address family).
  -x ADDR, -J ADDR   Send outbound connections from ADDR.

Authentication
  -a n|p             SOCKS5 method the server asks for: n = none (default), p = user name
                     and password (RFC 1929).

Process and logging
  -f                 Stay in the foreground. Without -f, srelay detaches into the
                     background, prints the child's PID and logs to syslog.
  -p FILE            Write the process ID to FILE (removed at exit).
  -r                 Resolve client addresses to names in log lines.
  -s                 Log to syslog even in the foreground (see --syslog-address).
  --syslog-address HOST:PORT
                     Syslog receiver for -s and background mode (UDP, default 127.0.0.1:514).
  --log-file FILE    Append log lines to FILE instead of stderr or syslog.
  --log-format text|json
                     text (default, srelay style) or one JSON object per line.
  --log-level LEVEL  trace, debug, info (default), warning, error or fatal.
  --io native|node   Socket layer: the runtime's own (default) or node:net.
  -t                 Accepted for compatibility (srelay's "no threads"); no effect.
  -b                 Accepted for compatibility (BIND port restriction); no effect yet.
  -v, -V             Print the version and exit.
  -h, -?             Print this help and exit.

Signals
  SIGHUP             Reload the route table; a file with errors is rejected and the
                     old table stays in force.
  SIGTERM, SIGINT    Stop accepting, let running sessions finish (up to --grace SECONDS,
                     default 10), then exit 0.

Examples
  srelay -f -i 127.0.0.1:1080
  curl --socks5-hostname 127.0.0.1:1080 https://example.org/
  srelay -f -i :0 -o 15 -c ./srelay.conf -u ./srelay.passwd

Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 usage error.
`;
}
