/**
 * One client connection from accept to close: read the version byte,
 * hand over to the SOCKS4 or SOCKS5 side, and turn anything that goes wrong
 * during the handshake into the right reply (or a clean close) and one log line.
 *
 * @module
 */
import { Inbox } from "../io/inbox.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { type Decoded, needBytes, ProtocolError } from "../protocol/decoded.ts";
import { type Connection, NetError } from "../runtime/types.ts";
import type { SessionContext } from "./session_context.ts";
import { hexByte } from "../util/hex.ts";
import { serveSocks4 } from "./socks4_session.ts";
import { serveSocks5 } from "./socks5_session.ts";

function peekVersion(bytes: Uint8Array): Decoded<number> {
  const first = bytes[0];
  return first === undefined ? needBytes(1) : { ok: true, value: first, size: 0 };
}

/** Serves one accepted client connection. Resolves when both sockets are closed; never throws. */
export async function serveSession(client: Connection, context: SessionContext): Promise<void> {
  const inbox = new Inbox(client);
  const handshake = new AbortController();
  const seconds = context.settings.handshakeTimeoutMs / 1000;
  const timer = setTimeout(
    () => handshake.abort(new NetError("timeout", `Handshake not completed within ${seconds} s`)),
    context.settings.handshakeTimeoutMs,
  );
  const onShutdown = () => handshake.abort(new NetError("aborted", "Server is shutting down"));
  context.shutdown.addEventListener("abort", onShutdown, { once: true });
  let version = 0;
  try {
    version = await inbox.read(peekVersion, handshake.signal);
    if (version === 5) return await serveSocks5(client, inbox, context, handshake.signal);
    if (version === 4) return await serveSocks4(client, inbox, context, handshake.signal);
    throw new ProtocolError(`Cannot serve client: first byte ${hexByte(version)} is not SOCKS4 or SOCKS5`);
  } catch (error) {
    await sendAndClose(client);
    const label = await context.clientLabel;
    const reason = error instanceof Error ? error.message : String(error);
    const quiet = error instanceof NetError && error.code === "closed" && inbox.buffered === 0 && version === 0;
    context.logger[quiet ? "info" : "warn"]("{client} handshake failed: {reason}", {
      session: context.id,
      client: label,
      reason,
      outcome: "handshake_failed",
    });
  } finally {
    clearTimeout(timer);
    context.shutdown.removeEventListener("abort", onShutdown);
    client.close();
  }
}
