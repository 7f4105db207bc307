// A tiny authoritative DNS responder on 127.0.0.1 (UDP) for discovery tests: A and AAAA answers
// from a function of (name, type, how many times it was asked), so a test can rebind a name
// between two queries. Every query is logged. Nothing here talks to any other address.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { formatIp, parseIp } from "../../shared/schemapin";

export type RecordType = "A" | "AAAA";
/** Answers for one query; `undefined` = NXDOMAIN, "drop" = never answer (a timeout). */
export type Answer = string[] | undefined | "drop";
export type Zone = (name: string, type: RecordType, nth: number) => Answer;

const TYPES: Record<number, RecordType> = { 1: "A", 28: "AAAA" };

export class TestDnsServer {
  readonly queries: { name: string; type: string }[] = [];
  private socket: Socket | undefined;
  private readonly counts = new Map<string, number>();
  port = 0;

  constructor(public zone: Zone) {}

  /** `host:port` for `[tofu] discovery_resolvers`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  asked(name: string): number {
    return this.queries.filter((q) => q.name === name).length;
  }

  async start(): Promise<void> {
    const s = createSocket("udp4");
    s.on("message", (msg, peer) => this.answer(s, msg, peer));
    await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
    this.socket = s;
    this.port = s.address().port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(resolve) : resolve()));
  }

  private answer(s: Socket, msg: Buffer, peer: RemoteInfo): void {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return;
    // The question: labels, then type and class.
    const labels: string[] = [];
    let o = 12;
    while (o < msg.length && msg[o] !== 0) {
      const len = msg[o]!;
      if (len > 63 || o + 1 + len > msg.length) return;
      labels.push(msg.subarray(o + 1, o + 1 + len).toString("latin1"));
      o += 1 + len;
    }
    o += 1;
    if (o + 4 > msg.length) return;
    const qtype = msg.readUInt16BE(o);
    const question = msg.subarray(12, o + 4);
    const name = labels.join(".").toLowerCase();
    const type = TYPES[qtype];
    this.queries.push({ name, type: type ?? String(qtype) });
    const key = `${name}/${type}`;
    const nth = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, nth);
    const result: Answer = type ? this.zone(name, type, nth) : [];
    if (result === "drop") return;
    const records = (result ?? []).flatMap((text) => {
      const ip = parseIp(text);
      if (!ip || (ip.family === 4) !== (type === "A")) return [];
      const rr = Buffer.alloc(12 + ip.bytes.length);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      rr.writeUInt16BE(qtype, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(0, 6); // TTL 0: a rebinding server's favourite
      rr.writeUInt16BE(ip.bytes.length, 10);
      Buffer.from(ip.bytes).copy(rr, 12);
      return [rr];
    });
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    // QR, opcode 0, AA, RD copied, RA; rcode 3 (NXDOMAIN) for unknown names.
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (result ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    s.send(Buffer.concat([header, question, ...records]), peer.port, peer.address);
  }
}

/** A fixed zone: name → addresses (A and AAAA picked by family); other names NXDOMAIN. */
export const staticZone =
  (records: Record<string, string[]>): Zone =>
  (name, type) => {
    const all = records[name];
    if (!all) return undefined;
    return all.filter((a) => {
      const ip = parseIp(a);
      return ip !== null && (ip.family === 4) === (type === "A");
    });
  };

export const canonicalIp = (text: string): string => {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP: ${text}`);
  return formatIp(ip);
};
