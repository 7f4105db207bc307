// One typed error for every cryptographic rejection, so callers can map `code` to a stable
// problem type without parsing messages.
export type CryptoErrorCode =
  | "invalid_key"
  | "invalid_jwk"
  | "invalid_input"
  | "invalid_signature"
  | "decrypt_failed"
  | "unsupported"
  | "limit_exceeded"
  | "replay"
  | "out_of_window"
  | "out_of_order"
  | "channel_closed";

export class CryptoError extends Error {
  override readonly name = "CryptoError";
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function assertBytes(value: unknown, length: number | undefined, what: string): Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new CryptoError("invalid_input", `${what}: expected bytes`);
  if (length !== undefined && value.length !== length) {
    throw new CryptoError(
      "invalid_input",
      `${what}: expected ${length} bytes, got ${value.length}`,
    );
  }
  return value;
}

/** TS 5.9 types WebCrypto inputs as ArrayBuffer-backed views; our bytes never come from a SharedArrayBuffer. */
export const bs = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>;

export const randomBytes = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
