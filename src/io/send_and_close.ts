/**
 * Ends a connection politely: send a last message, FIN, then close once the
 * peer closes too or a short linger expires (RFC 1928 asks the server to
 * close "shortly after sending the reply"). A server that is shutting down
 * does not linger: when `signal` is (or becomes) aborted the connection is
 * closed at once.
 *
 * @module
 */
import type { Cancellation, Connection } from "../runtime/types.ts";

/** How long to wait for the peer to close after our FIN. */
const LINGER_MS = 2000;

/** Writes `bytes` (if any), half-closes, and closes fully when the peer is done or `signal` aborts. */
export function sendAndClose(connection: Connection, bytes?: Uint8Array, signal?: Cancellation): Promise<void> {
  if (connection.closed) return Promise.resolve();
  if (signal?.aborted) {
    if (bytes !== undefined) connection.write(bytes);
    connection.close();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(finish, LINGER_MS);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", finish);
      connection.close();
      resolve();
    }
    signal?.addEventListener("abort", finish, { once: true });
    connection.setHandlers({ onData: () => {}, onEnd: finish, onClose: finish });
    connection.resume();
    if (bytes !== undefined) connection.write(bytes);
    connection.closeWrite();
  });
}
