// Narrowing helpers for values parsed by structured-headers.
import type { BareItem } from "structured-headers";

/** Parsed byte sequences are ArrayBuffers; checked by tag so realms do not matter. */
export function isByteSequence(v: BareItem): v is ArrayBuffer {
  return Object.prototype.toString.call(v) === "[object ArrayBuffer]";
}
