/**
 * One scripted end of a `Connection` for byte-script tests: send exact
 * bytes, read exact byte counts in order, and see when the other side sent
 * FIN or closed. Every wait is bounded.
 *
 * @module
 */
import type { Connection, NetError } from "../../src/runtime/types.ts";

/** Bytes as a test writes them: a byte list, text (UTF-8) or bytes. */
export type Bytes = Uint8Array | readonly number[] | string;

/** Turns `Bytes` into a `Uint8Array`. */
export function bytesOf(data: Bytes): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  return data instanceof Uint8Array ? data : Uint8Array.from(data);
}

/** Formats bytes as hex for assertion messages. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ");
}

/** A scripted connection end. */
export class ScriptPeer {
  readonly connection: Connection;
  #chunks: Uint8Array[] = [];
  #total = 0;
  #cursor = 0;
  #ended = false;
  #closed = false;
  #closeError: NetError | undefined;
  #waiters = new Set<() => void>();

  /** Installs handlers on `connection`; with `echo` it writes back what arrives and half-closes after its peer. */
  constructor(connection: Connection, options: { echo?: boolean } = {}) {
    this.connection = connection;
    connection.setHandlers({
      onData: (chunk) => {
        this.#chunks.push(chunk.slice());
        this.#total += chunk.length;
        if (options.echo) connection.write(chunk);
        this.#wake();
      },
      onEnd: () => {
        this.#ended = true;
        if (options.echo) connection.closeWrite();
        this.#wake();
      },
      onClose: (error) => {
        this.#ended = true;
        this.#closed = true;
        this.#closeError = error;
        this.#wake();
      },
    });
    connection.resume();
  }

  /** Every byte received so far. */
  received(): Uint8Array {
    const all = new Uint8Array(this.#total);
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    if (this.#chunks.length > 1) this.#chunks = [all];
    return all;
  }

  /** Number of bytes received so far. */
  get receivedLength(): number {
    return this.#total;
  }

  /** True once the other side sent FIN (or the connection closed). */
  get ended(): boolean {
    return this.#ended;
  }

  /** True once the connection closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error the connection closed with (a reset), if any. */
  get closeError(): NetError | undefined {
    return this.#closeError;
  }

  send(data: Bytes): void {
    this.connection.write(bytesOf(data));
  }

  /** Sends FIN. */
  end(): void {
    this.connection.closeWrite();
  }

  close(): void {
    this.connection.close();
  }

  /**
   * Resolves with the next `length` unread bytes. Rejects when the other side
   * ends first or after `timeoutMs`.
   */
  async read(length: number, timeoutMs = 2000): Promise<Uint8Array> {
    await this.#until(() => this.#total - this.#cursor >= length || this.#ended, timeoutMs, `${length} bytes`);
    if (this.#total - this.#cursor < length) {
      const got = this.received().subarray(this.#cursor);
      throw new Error(`Connection ended after ${got.length} of ${length} bytes: ${hex(got)}`);
    }
    const bytes = this.received().slice(this.#cursor, this.#cursor + length);
    this.#cursor += length;
    return bytes;
  }

  /** Waits for the other side's FIN (or close); resolves with the unread bytes. */
  async readToEnd(timeoutMs = 2000): Promise<Uint8Array> {
    await this.#until(() => this.#ended, timeoutMs, "the end of the stream");
    const rest = this.received().slice(this.#cursor);
    this.#cursor = this.#total;
    return rest;
  }

  /** Waits until the connection is closed. */
  async waitForClose(timeoutMs = 2000): Promise<void> {
    await this.#until(() => this.#closed, timeoutMs, "the close");
  }

  /** Waits until `count` bytes were received in all. */
  async waitForLength(count: number, timeoutMs = 2000): Promise<void> {
    await this.#until(() => this.#total >= count, timeoutMs, `${count} bytes in all`);
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  async #until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `Timed out after ${timeoutMs} ms waiting for ${what}; received ${this.#total} bytes: ` +
              hex(this.received().subarray(0, 64)),
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}
