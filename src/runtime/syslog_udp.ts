/**
 * Syslog to a UDP collector (`--syslog-address HOST:PORT`) over node:dgram,
 * which Deno and Bun both provide. The host name is resolved once, at open;
 * the socket is connected to the collector, so errors the collector's host
 * reports (ICMP port unreachable: `ECONNREFUSED`) come back as drops.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { queuedSyslogTransport } from "../log/syslog_queue.ts";
import type { SyslogReport, SyslogTransport } from "../log/syslog_sink.ts";

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : String(error);
}

/**
 * Opens a UDP socket connected to `host:port`. Rejects with an `Error` whose
 * `code` says why (`ENOTFOUND` for a name that does not resolve).
 */
export async function openUdpSyslog(host: string, port: number, report: SyslogReport): Promise<SyslogTransport> {
  const { address, family } = await lookup(host);
  const socket = createSocket(family === 6 ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.connect(port, address, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  // Errors reported later by the collector's host (not for one send).
  socket.on("error", (error) => report(codeOf(error)));
  socket.unref();
  return queuedSyslogTransport({
    send: (datagram) =>
      new Promise<void>((resolve, reject) => socket.send(datagram, (error) => error ? reject(error) : resolve())),
    release: () => socket.close(),
  }, report);
}
