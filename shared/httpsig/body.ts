// Request bodies arrive as bytes, text or buffers; everything below works on bytes.
import { utf8 } from "../encoding";

export type BodyInit = Uint8Array | ArrayBuffer | string;

export function bodyBytes(body: BodyInit | null | undefined): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return utf8(body);
  if (body instanceof Uint8Array) return body;
  return new Uint8Array(body);
}
