// Signature-Input / Signature (RFC 9421 §4), parsed and serialized with structured-headers only.
import {
  type InnerList,
  type Item,
  type Parameters,
  parseDictionary,
  serializeDictionary,
} from "structured-headers";
import { isByteSequence } from "./sf";

/** Bounded parsing cost: far above what a real client sends. */
export const MAX_FIELD_LENGTH = 8192;
export const MAX_COMPONENTS = 32;

export interface SignatureEntry {
  readonly label: string;
  readonly components: readonly string[];
  /** Parameters as received, in order; re-serialized verbatim into `@signature-params`. */
  readonly params: Parameters;
  readonly signature: Uint8Array;
}

export type FieldParse =
  | { readonly ok: true; readonly entry: SignatureEntry }
  | { readonly ok: false; readonly detail: string };

export function serializeSignatureFields(
  label: string,
  components: readonly string[],
  params: Parameters,
  signature: Uint8Array,
): { signatureInput: string; signature: string } {
  const signatureInput = serializeDictionary(
    new Map<string, InnerList>([[label, [components.map((c): Item => [c, new Map()]), params]]]),
  );
  return {
    signatureInput,
    signature: serializeDictionary(
      // Copy: BufferSource wants an ArrayBuffer-backed view, not any ArrayBufferLike.
      new Map<string, Item>([[label, [new Uint8Array(signature), new Map()]]]),
    ),
  };
}

/**
 * Picks one signature: the given label, or the first member of Signature-Input. Every
 * syntactic problem is reported as a detail string (the caller maps it to `auth-required`).
 */
export function parseSignatureFields(
  signatureInput: string | null,
  signature: string | null,
  label?: string,
): FieldParse {
  if (signatureInput === null || signature === null) {
    return { ok: false, detail: "Signature-Input and Signature headers are required" };
  }
  if (signatureInput.length > MAX_FIELD_LENGTH || signature.length > MAX_FIELD_LENGTH) {
    return { ok: false, detail: "signature header too long" };
  }
  let inputs: ReturnType<typeof parseDictionary>;
  let sigs: ReturnType<typeof parseDictionary>;
  try {
    inputs = parseDictionary(signatureInput);
  } catch {
    return { ok: false, detail: "Signature-Input is not a structured dictionary" };
  }
  try {
    sigs = parseDictionary(signature);
  } catch {
    return { ok: false, detail: "Signature is not a structured dictionary" };
  }
  const chosen = label ?? inputs.keys().next().value;
  if (chosen === undefined) return { ok: false, detail: "Signature-Input is empty" };
  const input = inputs.get(chosen);
  if (input === undefined) return { ok: false, detail: `no Signature-Input labelled ${chosen}` };
  const sig = sigs.get(chosen);
  if (sig === undefined) return { ok: false, detail: `no Signature labelled ${chosen}` };

  const [items, params] = input;
  if (!Array.isArray(items))
    return { ok: false, detail: "Signature-Input member is not an inner list" };
  if (items.length > MAX_COMPONENTS) return { ok: false, detail: "too many covered components" };
  const components: string[] = [];
  for (const [value, itemParams] of items) {
    if (typeof value !== "string") {
      return { ok: false, detail: "covered components must be strings" };
    }
    if (itemParams.size > 0) {
      return { ok: false, detail: `component parameters are not supported (${value})` };
    }
    if (components.includes(value)) return { ok: false, detail: `component ${value} listed twice` };
    components.push(value);
  }

  const [sigValue] = sig;
  if (Array.isArray(sigValue) || !isByteSequence(sigValue)) {
    return { ok: false, detail: "Signature member is not a byte sequence" };
  }
  return {
    ok: true,
    entry: { label: chosen, components, params, signature: new Uint8Array(sigValue) },
  };
}
