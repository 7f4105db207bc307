// Values kept in Redis as `<hmac hex>.<text>` (approvals, incidents, pins): Redis is not trusted, so
// a value planted or edited there fails its MAC and the store reports an error instead of using it.
// The MAC is HMAC-SHA256, under a key every API process shares, over the store's context, the
// value's name (the record it belongs to: a value moved under another name fails too) and the text.
import { hmacSha256, verifyHmacSha256 } from "../../../shared/crypto";
import { fromHex, toHex, utf8 } from "../../../shared/encoding";

export class ValueMac {
  readonly #key: Uint8Array;
  readonly #context: string;

  /** `key`: 32 bytes; `context`: the store's and version's, e.g. "sigil.approval-record.v1". */
  constructor(key: Uint8Array, context: string) {
    if (key.length !== 32) throw new TypeError("macKey must be 32 bytes");
    this.#key = key;
    this.#context = context;
  }

  #input(name: string, text: string): Uint8Array {
    return utf8(`${this.#context}\n${name}\n${text}`);
  }

  /** The stored form of `text` under `name`. */
  seal(name: string, text: string): string {
    return `${toHex(hmacSha256(this.#key, this.#input(name, text)))}.${text}`;
  }

  /** The text `stored` holds under `name`, or undefined when it fails its MAC (the caller's error). */
  open(name: string, stored: string): string | undefined {
    const dot = stored.indexOf(".");
    const tag = stored.slice(0, dot);
    const text = stored.slice(dot + 1);
    if (
      dot !== 64 ||
      !/^[0-9a-f]{64}$/.test(tag) ||
      !verifyHmacSha256(this.#key, this.#input(name, text), fromHex(tag))
    )
      return undefined;
    return text;
  }
}
