// UUIDv7 identifiers (RFC 9562) for decisions, jobs and audit events. Their random bits are
// uniqueness, not secrets, so they come from a pool: getRandomValues is priced like a syscall,
// and one call per id was a measurable share of a request. Never use this pool for key material.
import { v7 } from "uuid";

const POOL_BYTES = 4096;
let pool = new Uint8Array(0);
let at = 0;

/** 16 fresh random bytes, each handed out once. */
export function idRandom16(): Uint8Array {
  if (at + 16 > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(POOL_BYTES));
    at = 0;
  }
  const r = pool.subarray(at, at + 16);
  at += 16;
  return r;
}

/** A UUIDv7; ids from one isolate sort by creation time. */
export function uuidV7(): string {
  return v7({ random: idRandom16() });
}
