/**
 * Byte formatting for messages and logs.
 *
 * @module
 */

/** Formats a byte as `0x05`. */
export function hexByte(value: number): string {
  return `0x${value.toString(16).padStart(2, "0")}`;
}
