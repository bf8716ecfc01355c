/**
 * A small scripted SOCKS client on node:net for end-to-end tests: send exact
 * bytes, read exact replies, and see whether the server closed.
 *
 * @module
 */
import { connect, type Socket } from "node:net";

/** A client connection with buffered reads. */
export interface ScriptedClient {
  readonly socket: Socket;
  send(bytes: Uint8Array | number[] | string): void;
  /** Resolves with exactly `length` bytes, or rejects after `timeoutMs` or when the server closes first. */
  read(length: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves with everything until the server closes (bounded by `timeoutMs`). */
  readToEnd(timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves true when the server closed (FIN or reset) within `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/** Opens a TCP connection to the proxy. */
export function openClient(host: string, port: number): Promise<ScriptedClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true });
    let buffer = new Uint8Array(0);
    let ended = false;
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const waiter of [...waiters]) waiter();
    };
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      wake();
    });
    socket.on("end", () => {
      ended = true;
      wake();
    });
    socket.on("close", () => {
      ended = true;
      wake();
    });
    socket.on("error", () => {
      ended = true;
      wake();
    });
    const wait = (ready: () => boolean, timeoutMs: number, what: string) =>
      new Promise<void>((done, fail) => {
        const check = () => {
          if (ready()) {
            clearTimeout(timer);
            waiters.delete(check);
            done();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    const client: ScriptedClient = {
      socket,
      send(bytes) {
        socket.write(typeof bytes === "string" ? bytes : Uint8Array.from(bytes));
      },
      async read(length, timeoutMs = 5000) {
        await wait(() => buffer.length >= length || ended, timeoutMs, `${length} bytes`);
        if (buffer.length < length) {
          throw new Error(`Server closed after ${buffer.length} of ${length} bytes: ${[...buffer]}`);
        }
        const out = buffer.slice(0, length);
        buffer = buffer.slice(length);
        return out;
      },
      async readToEnd(timeoutMs = 5000) {
        await wait(() => ended, timeoutMs, "the server to close");
        const out = buffer;
        buffer = new Uint8Array(0);
        return out;
      },
      async closedWithin(timeoutMs) {
        try {
          await wait(() => ended, timeoutMs, "close");
          return true;
        } catch {
          return false;
        }
      },
      close() {
        socket.destroy();
      },
    };
    socket.once("connect", () => resolve(client));
    socket.once("error", reject);
  });
}

/** Bytes of a SOCKS5 no-auth greeting plus a CONNECT request to an IPv4 target. */
export function socks5ConnectBytes(host: string, port: number): number[] {
  return [5, 1, 0, 5, 1, 0, 1, ...host.split(".").map(Number), port >> 8, port & 0xff];
}
