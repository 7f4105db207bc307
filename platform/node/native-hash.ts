// node:crypto's SHA-256 for the core's hot paths (audit sealing and verification, Merkle trees):
// about twice the pure-JS rate on ~300-byte events, and strings are hashed without a TextEncoder
// copy. Installed once by every Node entry (API, worker, scripts, benchmarks).
import { createHash } from "node:crypto";
import { installSha256 } from "../../shared/encoding";

export function installNodeSha256(): void {
  installSha256((parts) => {
    const h = createHash("sha256");
    for (const p of parts) h.update(p);
    const d = h.digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  });
}
