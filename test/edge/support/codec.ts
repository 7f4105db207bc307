// JSON with Uint8Array and undefined preserved, for the test channel between Node and the test
// Worker (the real Worker ↔ DO path uses workerd's structured clone and needs none of this).
import { fromBase64Url, toBase64Url } from "../../../shared/encoding";

const UNDEF = { $undef: true } as const;

export function encode(value: unknown): string {
  return JSON.stringify(value === undefined ? UNDEF : value, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return { $u8: toBase64Url(v) };
    if (v === undefined) return UNDEF;
    return v;
  });
}

const SENTINEL = Symbol("undefined");

function restore(v: unknown): unknown {
  if (v === SENTINEL) return undefined;
  if (Array.isArray(v)) {
    // Assign explicitly: a hole would be skipped by map/forEach, an undefined element is not.
    for (let i = 0; i < v.length; i++) v[i] = restore(v[i]);
    return v;
  }
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    for (const [k, x] of Object.entries(v)) {
      if (x === SENTINEL) delete (v as Record<string, unknown>)[k];
      else (v as Record<string, unknown>)[k] = restore(x);
    }
  }
  return v;
}

export function decode(text: string): unknown {
  const parsed = JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (o.$undef === true && Object.keys(o).length === 1) return SENTINEL;
      if (typeof o.$u8 === "string" && Object.keys(o).length === 1) return fromBase64Url(o.$u8);
    }
    return v;
  }) as unknown;
  return restore(parsed);
}
