/**
 * Syslog over a Unix datagram socket (`/dev/log`) on Deno, with
 * `Deno.listenDatagram({ transport: "unixpacket" })` (the unstable "net"
 * feature, enabled in deno.json and by `deno compile --unstable-net`).
 *
 * Deno's datagram socket must be bound to a path to send: it is bound to a
 * fresh name in the temporary directory, which is removed at once (the
 * socket keeps working; nobody needs to answer it). Deno cannot connect a
 * datagram socket, so opening first tries a stream connection to the path:
 * `ENOENT` and `ECONNREFUSED` mean nobody receives there, and `EPROTOTYPE`
 * means a datagram socket does, which is what syslog needs.
 *
 * Every line is sent to the path anew, so a receiver that restarts (journald)
 * is found again without reconnecting. Lines go out one at a time through
 * the queue of `syslog_queue.ts`; Deno waits while the receiver's queue is
 * full, without blocking.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { queuedSyslogTransport } from "../log/syslog_queue.ts";
import type { SyslogReport, SyslogTransport } from "../log/syslog_sink.ts";

function codeOf(error: unknown): string {
  const { code, name } = error as { code?: unknown; name?: unknown };
  return typeof code === "string" ? code : typeof name === "string" ? name : String(error);
}

/** Fails unless a datagram socket receives at `path` (see the module comment). */
async function probe(path: string): Promise<void> {
  let connection: Deno.Conn;
  try {
    connection = await Deno.connect({ transport: "unix", path });
  } catch (error) {
    const code = codeOf(error);
    if (code === "ENOENT" || code === "ECONNREFUSED" || code === "EACCES" || code === "NotCapable") throw error;
    return; // EPROTOTYPE: a socket of another type (datagram) is bound there.
  }
  connection.close();
  throw Object.assign(new Error(`EPROTOTYPE: ${path} is a stream socket`), { code: "EPROTOTYPE" });
}

/**
 * Opens a datagram socket that sends to `path`. Rejects with an `Error`
 * whose `code` is `ENOENT`, `ECONNREFUSED`, `EACCES` or `EPROTOTYPE` when
 * no datagram socket receives there.
 */
export async function openDenoUnixSyslog(path: string, report: SyslogReport): Promise<SyslogTransport> {
  await probe(path);
  const own = join(tmpdir(), `srelay-syslog-${process.pid}-${crypto.randomUUID().slice(0, 8)}`);
  const socket = Deno.listenDatagram({ transport: "unixpacket", path: own });
  unlinkSync(own);
  const target: Deno.UnixAddr = { transport: "unixpacket", path };
  return queuedSyslogTransport({
    send: async (datagram) => {
      await socket.send(datagram, target);
    },
    release: () => socket.close(),
  }, report);
}
