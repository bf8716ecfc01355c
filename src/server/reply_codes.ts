/**
 * The one place where a failure becomes a reply reason. Adapters turn
 * runtime errors into `NetError`, codecs throw `ProtocolError`, next hops
 * throw `HopError`; this maps each to the `FailureReason` the client is told
 * (network errors through `failureForNetError`, the table in
 * `protocol/reply.ts` that next hops use too).
 *
 * @module
 */
import { ProtocolError } from "../protocol/decoded.ts";
import { failureForNetError, type FailureReason } from "../protocol/reply.ts";
import { NetError } from "../runtime/types.ts";
import { HopError } from "../upstream/hop_error.ts";

/**
 * The reply reason for any error thrown while serving a request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetError } from "../runtime/types.ts";
 * assert.equal(failureReasonFor(new NetError("refused", "no")), "connection_refused");
 * assert.equal(failureReasonFor(new Error("bug")), "general_failure");
 * ```
 */
export function failureReasonFor(error: unknown): FailureReason {
  if (error instanceof HopError) return error.reason;
  if (error instanceof ProtocolError) return error.reply;
  if (error instanceof NetError) return failureForNetError(error);
  return "general_failure";
}
