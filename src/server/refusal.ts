/**
 * A request the server turns down on purpose (no acceptable method, a
 * command it does not serve, a rule that forbids the target): unlike a
 * protocol or network error it carries the exact reply bytes to send and
 * the outcome to log.
 *
 * @module
 */

/** A deliberate refusal by one of the session's stages. */
export class Refusal extends Error {
  /** What the log says about the request: `5`, `4a`, `5-BND`. */
  readonly tag: string;
  /** The outcome field of the log line (`no_acceptable_method`, `not_allowed`...). */
  readonly outcome: string;
  /** The last message the client gets before the close, if any. */
  readonly reply: Uint8Array | undefined;
  /** The level of its log line: `debug` for a repeat that was already reported. */
  readonly level: "warn" | "debug";

  constructor(tag: string, outcome: string, message: string, reply?: Uint8Array, level: "warn" | "debug" = "warn") {
    super(message);
    this.name = "Refusal";
    this.tag = tag;
    this.outcome = outcome;
    this.reply = reply;
    this.level = level;
  }
}
