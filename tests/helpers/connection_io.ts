/**
 * Reading and writing a `Connection` in tests: collect what arrives, and
 * wait (bounded) until enough has.
 *
 * @module
 */
import type { Connection } from "../../src/runtime/types.ts";

/** What a connection has delivered since `collect` was called. */
export interface Collected {
  /** Every byte received so far, in order. */
  bytes(): Uint8Array;
  /** True once the peer sent FIN or the connection closed. */
  readonly ended: boolean;
  /** Waits until at least `length` bytes arrived (at most `timeoutMs`); returns them all. */
  waitForBytes(length: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Waits until the peer ended (at most `timeoutMs`). */
  waitForEnd(timeoutMs?: number): Promise<void>;
}

/**
 * Installs handlers on `connection` that keep every chunk (starting with
 * `first`, e.g. a dial's `rest`) and resumes it.
 */
export function collect(connection: Connection, first: Uint8Array = new Uint8Array(0)): Collected {
  const chunks: Uint8Array[] = first.length > 0 ? [first.slice()] : [];
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  connection.setHandlers({
    onData(chunk) {
      chunks.push(chunk.slice());
      notify();
    },
    onEnd() {
      ended = true;
      notify();
    },
    onClose() {
      ended = true;
      notify();
    },
  });
  connection.resume();
  const bytes = () => {
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const all = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  };
  const until = async (condition: () => boolean, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  return {
    bytes,
    get ended() {
      return ended;
    },
    async waitForBytes(length, timeoutMs = 3000) {
      await until(() => bytes().length >= length || ended, timeoutMs, `${length} bytes`);
      return bytes();
    },
    async waitForEnd(timeoutMs = 3000) {
      await until(() => ended, timeoutMs, "the end of the stream");
    },
  };
}

/** Encodes text as UTF-8. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Decodes UTF-8. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
