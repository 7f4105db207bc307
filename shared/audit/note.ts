// C2SP signed-note (Ed25519, signature type 0x01) and C2SP tlog-checkpoint bodies.
// https://c2sp.org/signed-note · https://c2sp.org/tlog-checkpoint
import {
  concatBytes,
  equalBytes,
  fromBase64,
  sha256Bytes,
  toBase64,
  toHex,
  utf8,
} from "../encoding";
import { HASH_SIZE } from "./merkle";
import type { Signer, VerifyFn } from "./ports";

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoteError";
  }
}

const ED25519_TYPE = 0x01;
const SIG_PREFIX = "\u2014 ";
const MAX_SIGNATURES = 100;

/** Key names: non-empty, no whitespace, no "+" (C2SP signed-note). */
export function assertKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name))
    throw new NoteError(`invalid note key name ${JSON.stringify(name)}`);
}

/** Key id: first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). */
export function noteKeyId(name: string, publicKey: Uint8Array): Uint8Array {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new NoteError("Ed25519 public key must be 32 bytes");
  return sha256Bytes(
    concatBytes(utf8(name), new Uint8Array([0x0a, ED25519_TYPE]), publicKey),
  ).slice(0, 4);
}

/** The verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. */
export function verifierKey(name: string, publicKey: Uint8Array): string {
  const id = toHex(noteKeyId(name, publicKey));
  return `${name}+${id}+${toBase64(concatBytes(new Uint8Array([ED25519_TYPE]), publicKey))}`;
}

/** Parses a verifier key string back into name and public key; checks the key id. */
export function parseVerifierKey(vkey: string): NoteKey {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!m) throw new NoteError("malformed verifier key");
  const raw = fromBase64(m[3]!);
  if (raw.length !== 33 || raw[0] !== ED25519_TYPE)
    throw new NoteError("verifier key is not Ed25519");
  const publicKey = raw.slice(1);
  if (toHex(noteKeyId(m[1]!, publicKey)) !== m[2]) throw new NoteError("verifier key id mismatch");
  return { name: m[1]!, publicKey };
}

function assertNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith("\n"))
    throw new NoteError("note text must end with a newline");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is exactly "no controls but \n".
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text))
    throw new NoteError("note text has control characters");
}

export interface NoteKey {
  name: string;
  publicKey: Uint8Array;
}

/** Signs `text` as a note; returns the full note and the raw signature. */
export async function signNote(
  text: string,
  name: string,
  signer: Signer,
): Promise<{ note: string; signature: Uint8Array }> {
  assertNoteText(text);
  const id = noteKeyId(name, signer.publicKey);
  const signature = await signer.sign(utf8(text));
  if (signature.length !== 64) throw new NoteError("signer returned a malformed signature");
  const line = `${SIG_PREFIX}${name} ${toBase64(concatBytes(id, signature))}\n`;
  return { note: `${text}\n${line}`, signature };
}

export interface ParsedNote {
  text: string;
  signatures: { name: string; keyId: Uint8Array; signature: Uint8Array }[];
}

/** Splits a note into text and signature lines (syntax only). */
export function parseNote(note: string): ParsedNote {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("note has no signature block");
  const text = note.slice(0, split + 1);
  assertNoteText(text);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new NoteError("signature block must end with a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new NoteError("too many signatures");
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError("malformed signature line");
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(" ");
    if (sp <= 0) throw new NoteError("malformed signature line");
    const name = rest.slice(0, sp);
    assertKeyName(name);
    let raw: Uint8Array;
    try {
      raw = fromBase64(rest.slice(sp + 1));
    } catch {
      throw new NoteError("malformed signature encoding");
    }
    if (raw.length < 5) throw new NoteError("signature too short");
    return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  if (signatures.length === 0) throw new NoteError("note has no signatures");
  return { text, signatures };
}

/**
 * Verifies a note against known keys: at least one known key must have signed it, and every
 * signature claiming a known key must verify. Signatures by unknown keys are ignored (C2SP).
 */
export async function openNote(
  note: string,
  keys: readonly NoteKey[],
  verify: VerifyFn,
): Promise<{ text: string; verifiedBy: string[] }> {
  const parsed = parseNote(note);
  const msg = utf8(parsed.text);
  const verifiedBy: string[] = [];
  for (const sig of parsed.signatures) {
    const key = keys.find(
      (k) => k.name === sig.name && equalBytes(noteKeyId(k.name, k.publicKey), sig.keyId),
    );
    if (!key) continue;
    if (sig.signature.length !== 64 || !(await verify(key.publicKey, msg, sig.signature))) {
      throw new NoteError(`invalid signature by ${sig.name}`);
    }
    verifiedBy.push(sig.name);
  }
  if (verifiedBy.length === 0) throw new NoteError("no signature by a known key");
  return { text: parsed.text, verifiedBy };
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions: string[];
}

/** `<origin>\n<size>\n<base64 root>\n` plus optional extension lines. */
export function formatCheckpoint(
  cp: Omit<Checkpoint, "extensions"> & { extensions?: string[] },
): string {
  if (cp.origin.length === 0 || cp.origin.includes("\n")) throw new NoteError("invalid origin");
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new NoteError("invalid tree size");
  if (cp.rootHash.length !== HASH_SIZE) throw new NoteError("root hash must be 32 bytes");
  const ext = cp.extensions ?? [];
  for (const e of ext)
    if (e.length === 0 || e.includes("\n")) throw new NoteError("invalid extension line");
  return `${[cp.origin, String(cp.size), toBase64(cp.rootHash), ...ext].join("\n")}\n`;
}

export function parseCheckpoint(text: string): Checkpoint {
  assertNoteText(text);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new NoteError("checkpoint needs origin, size and root lines");
  const [origin, sizeLine, rootLine, ...extensions] = lines as [
    string,
    string,
    string,
    ...string[],
  ];
  if (origin.length === 0) throw new NoteError("empty origin");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw new NoteError("malformed tree size");
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new NoteError("tree size out of range");
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootLine);
  } catch {
    throw new NoteError("malformed root hash");
  }
  if (rootHash.length !== HASH_SIZE) throw new NoteError("root hash must be 32 bytes");
  if (extensions.some((e) => e.length === 0)) throw new NoteError("empty extension line");
  return { origin, size, rootHash, extensions };
}

/** Verifies a signed checkpoint note and returns its parsed body. */
export async function openCheckpoint(
  note: string,
  keys: readonly NoteKey[],
  verify: VerifyFn,
  origin?: string,
): Promise<Checkpoint> {
  const { text } = await openNote(note, keys, verify);
  const cp = parseCheckpoint(text);
  if (origin !== undefined && cp.origin !== origin)
    throw new NoteError("checkpoint origin mismatch");
  return cp;
}
