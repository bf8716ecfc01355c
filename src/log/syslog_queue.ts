/**
 * The queue every syslog transport sends through: datagrams go out one at a
 * time, in order (Deno refuses a second pending send on a socket, and its
 * node:dgram reorders concurrent ones), never blocking the caller. When the
 * queue is full the line is dropped and reported as `EAGAIN`.
 *
 * @module
 */
import type { SyslogReport, SyslogTransport } from "./syslog_sink.ts";

/** Lines that may wait at once; more are dropped. */
export const MAX_QUEUED_LINES = 1024;
/** Longest wait in `close()` for queued lines. */
const CLOSE_WAIT_MS = 1000;

/** How a queued transport sends and releases its socket. */
export interface DatagramSender {
  /** Sends one datagram; rejects with an `Error` whose `code` is an errno name. */
  send(datagram: Uint8Array): Promise<void>;
  /** Releases the socket; called once, after the queue drained or `close()` gave up waiting. */
  release(): void;
}

function codeOf(error: unknown): string {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  return typeof code === "string" ? code : typeof name === "string" ? name : String(error);
}

/**
 * A `SyslogTransport` that sends through `sender` one datagram at a time and
 * reports each outcome (`null`, or the rejection's errno name) to `report`.
 *
 * @example
 * ```ts
 * import { queuedSyslogTransport } from "./syslog_queue.ts";
 * const sent: string[] = [];
 * const transport = queuedSyslogTransport({
 *   send: (datagram) => {
 *     sent.push(new TextDecoder().decode(datagram));
 *     return Promise.resolve();
 *   },
 *   release: () => {},
 * }, () => {});
 * transport.send(new TextEncoder().encode("<30>Nov 25 16:08:21 srelay[1]: hello"));
 * await transport.close(); // sent: ["<30>Nov 25 16:08:21 srelay[1]: hello"]
 * ```
 */
export function queuedSyslogTransport(sender: DatagramSender, report: SyslogReport): SyslogTransport {
  const queue: Uint8Array[] = [];
  let sending = false;
  let closed = false;
  let drained: (() => void) | null = null;
  const pump = () => {
    const next = queue.shift();
    if (next === undefined) {
      sending = false;
      drained?.();
      return;
    }
    sending = true;
    sender.send(next).then(
      () => {
        report(null);
        pump();
      },
      (error) => {
        report(codeOf(error));
        pump();
      },
    );
  };
  return {
    send(datagram) {
      if (closed) return report("EBADF");
      if (queue.length >= MAX_QUEUED_LINES) return report("EAGAIN");
      queue.push(datagram);
      if (!sending) pump();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (sending) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          drained = resolve;
          timer = setTimeout(resolve, CLOSE_WAIT_MS);
        });
        clearTimeout(timer);
        queue.length = 0;
      }
      sender.release();
    },
  };
}
