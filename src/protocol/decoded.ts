/**
 * The result type every sans-I/O decoder returns, and the error it throws
 * for malformed input.
 *
 * @module
 */

/**
 * Either a decoded value and how many bytes it used, or how many bytes in
 * total the decoder needs before it can say more (`need > bytes.length`).
 */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T; readonly size: number }
  | { readonly ok: false; readonly need: number };

/** Reply codes a protocol error maps to, in the protocol's own terms. */
export type ProtocolErrorReply =
  | "general_failure"
  | "command_not_supported"
  | "address_type_not_supported";

/** Malformed wire input. `reply` says which reply the peer should get, if any. */
export class ProtocolError extends SyntaxError {
  readonly reply: ProtocolErrorReply;
  constructor(message: string, reply: ProtocolErrorReply = "general_failure") {
    super(message);
    this.name = "ProtocolError";
    this.reply = reply;
  }
}

/** Shorthand for a "need more bytes" result. */
export function needBytes(need: number): { ok: false; need: number } {
  return { ok: false, need };
}
