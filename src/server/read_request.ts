/**
 * Reads one handshake message and, when the bytes are malformed, sends the
 * reply the protocol prescribes before passing the error on.
 *
 * @module
 */
import type { Inbox } from "../io/inbox.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { type Decoded, ProtocolError } from "../protocol/decoded.ts";
import type { Connection } from "../runtime/types.ts";

/**
 * Like `inbox.read`, but a `ProtocolError` first gets `replyFor(error)` sent
 * to the client (then FIN and close), and is then rethrown for logging.
 */
export async function readOrReject<T>(
  client: Connection,
  inbox: Inbox,
  decode: (bytes: Uint8Array) => Decoded<T>,
  deadline: AbortSignal,
  replyFor: (error: ProtocolError) => Uint8Array,
): Promise<T> {
  try {
    return await inbox.read(decode, deadline);
  } catch (error) {
    if (error instanceof ProtocolError && !client.closed && !inbox.ended) {
      await sendAndClose(client, replyFor(error));
    }
    throw error;
  }
}
