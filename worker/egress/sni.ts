// Reads the server name (SNI) from the first TLS record a client sends (RFC 8446 §4.1.2, RFC 6066
// §3), so the egress proxy can refuse a CONNECT whose TLS names another host (domain fronting).
// Only the first record is read: a ClientHello split over several records is refused as
// unreadable rather than reassembled.

/** The most the proxy buffers before it decides. */
export const TLS_HEAD_MAX = 16 * 1024 + 5;

export type SniResult = { kind: "ok"; name: string } | { kind: "none" } | { kind: "unreadable" };

export function serverNameOf(buf: Uint8Array): SniResult {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  try {
    if (b.length < 5 || b[0] !== 0x16) return { kind: "unreadable" };
    const recLen = b.readUInt16BE(3);
    if (b.length < 5 + recLen) return { kind: "unreadable" };
    const end = 5 + recLen;
    let p = 5;
    if (b[p] !== 0x01) return { kind: "unreadable" }; // ClientHello
    const hsLen = b.readUIntBE(p + 1, 3);
    if (p + 4 + hsLen > end) return { kind: "unreadable" };
    p += 4 + 2 + 32; // version, random
    p += 1 + b[p]!; // session id
    p += 2 + b.readUInt16BE(p); // cipher suites
    p += 1 + b[p]!; // compression methods
    if (p + 2 > end) return { kind: "none" };
    const extEnd = p + 2 + b.readUInt16BE(p);
    if (extEnd > end) return { kind: "unreadable" };
    p += 2;
    let found: string | undefined;
    while (p + 4 <= extEnd) {
      const type = b.readUInt16BE(p);
      const len = b.readUInt16BE(p + 2);
      const body = p + 4;
      if (body + len > extEnd) return { kind: "unreadable" };
      if (type === 0) {
        // Two server_name extensions are a parser-confusion attempt.
        if (found !== undefined) return { kind: "unreadable" };
        const listEnd = body + 2 + b.readUInt16BE(body);
        let q = body + 2;
        const names: string[] = [];
        while (q + 3 <= listEnd) {
          const nameType = b[q]!;
          const nameLen = b.readUInt16BE(q + 1);
          if (q + 3 + nameLen > listEnd) return { kind: "unreadable" };
          if (nameType === 0) names.push(b.toString("latin1", q + 3, q + 3 + nameLen));
          q += 3 + nameLen;
        }
        if (names.length !== 1) return { kind: "unreadable" };
        found = names[0]!.toLowerCase().replace(/\.$/, "");
        if (!/^[a-z0-9.-]{1,253}$/.test(found)) return { kind: "unreadable" };
      }
      p = body + len;
    }
    return found === undefined ? { kind: "none" } : { kind: "ok", name: found };
  } catch {
    return { kind: "unreadable" };
  }
}
