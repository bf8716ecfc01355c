/**
 * Ends a connection politely: send a last message, FIN, then close once the
 * peer closes too or a short linger expires (RFC 1928 asks the server to
 * close "shortly after sending the reply").
 *
 * @module
 */
import type { Connection } from "../runtime/types.ts";

/** How long to wait for the peer to close after our FIN. */
const LINGER_MS = 2000;

/** Writes `bytes` (if any), half-closes, and closes fully when the peer is done. */
export function sendAndClose(connection: Connection, bytes?: Uint8Array): Promise<void> {
  if (connection.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, LINGER_MS);
    function finish() {
      clearTimeout(timer);
      connection.close();
      resolve();
    }
    connection.setHandlers({ onData: () => {}, onEnd: finish, onClose: finish });
    connection.resume();
    if (bytes !== undefined) connection.write(bytes);
    connection.closeWrite();
  });
}
