// The egress resolver (docs/sandbox.md, "Egress"): the proxy resolves names itself through the
// configured upstream resolvers (never the host's resolver or the job's answers), and a filtering
// DNS server answers the job only for the names its rules allow (others NXDOMAIN).

import { randomInt } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import * as dnsPacket from "dns-packet";
import { parseResolverAddress } from "../../shared/schemapin/addresses";
import { TokenBucket } from "./rate";

const QUERY_TIMEOUT_MS = 2000;
const MAX_ANSWERS = 16;
// RFC 1035 response codes, carried in the low four bits of the header flags.
export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** Asks one upstream resolver for A and AAAA of `name` over UDP; addresses in answer order. */
export async function resolveName(name: string, upstreams: readonly string[]): Promise<string[]> {
  let lastError: unknown = new Error("no upstream resolver configured");
  for (const text of upstreams) {
    const up = parseResolverAddress(text);
    if (!up) continue;
    try {
      const [a, aaaa] = await Promise.all([
        query(name, "A", up),
        query(name, "AAAA", up).catch(() => [] as string[]),
      ]);
      return [...a, ...aaaa].slice(0, MAX_ANSWERS);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

function query(
  name: string,
  type: "A" | "AAAA",
  up: { address: string; port: number },
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const id = randomInt(0, 65536);
    const sock = createSocket(up.address.includes(":") ? "udp6" : "udp4");
    const timer = setTimeout(
      () => done(new Error(`resolver ${up.address} timed out`)),
      QUERY_TIMEOUT_MS,
    );
    const done = (err: Error | null, out: string[] = []) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(out);
    };
    sock.on("error", (e) => done(e));
    sock.on("message", (msg, rinfo) => {
      if (rinfo.address !== up.address || rinfo.port !== up.port) return;
      let p: dnsPacket.Packet;
      try {
        p = dnsPacket.decode(msg);
      } catch {
        return;
      }
      if (p.id !== id) return;
      const rcode = (p.flags ?? 0) & 0xf;
      if (rcode === RCODE.NXDOMAIN) return done(null, []);
      if (rcode !== RCODE.NOERROR) return done(new Error(`resolver answered rcode ${rcode}`));
      // Only records of the asked type and name; CNAME chains are followed by the upstream.
      const out = (p.answers ?? []).flatMap((a) =>
        a.type === type && typeof a.data === "string" ? [a.data] : [],
      );
      done(null, out);
    });
    const packet = dnsPacket.encode({
      type: "query",
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name, class: "IN" }],
    });
    sock.send(packet, up.port, up.address);
  });
}

export interface DnsLogEntry {
  name: string;
  type: string;
  answered: boolean;
  reason?: string;
}

/**
 * The job's DNS server: answers A/AAAA only for names `allowed` admits, with the addresses
 * `resolve` returns that `admit` passes; every other question NXDOMAIN (REFUSED for other
 * types). Never recursive for anything else. At most `questionsPerSecond` questions a second
 * are handled (a burst of the same size); the rest get no answer, as from a resolver under load,
 * so a job cannot turn it into a flood of the upstream resolvers (a suffix rule admits endless
 * random subdomains).
 */
export async function startFilteringDns(opts: {
  host: string;
  port?: number;
  allowed: (name: string) => boolean;
  resolve: (name: string) => Promise<string[]>;
  admit: (address: string) => boolean;
  log: (e: DnsLogEntry) => void;
  questionsPerSecond: number;
}): Promise<{ socket: Socket; port: number; close: () => Promise<void> }> {
  const sock = createSocket(opts.host.includes(":") ? "udp6" : "udp4");
  const rate = new TokenBucket(opts.questionsPerSecond);
  const reply = (
    q: dnsPacket.Packet,
    r: RemoteInfo,
    rcode: number,
    answers: dnsPacket.Answer[] = [],
  ) => {
    const out = dnsPacket.encode({
      type: "response",
      id: q.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: q.questions ?? [],
      answers,
    });
    sock.send(out, r.port, r.address);
  };
  sock.on("message", (msg, rinfo) => {
    if (!rate.take()) return;
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (q.type !== "query" || !question || (q.questions?.length ?? 0) !== 1) return;
    const name = question.name.toLowerCase().replace(/\.$/, "");
    if (question.type !== "A" && question.type !== "AAAA") {
      opts.log({
        name,
        type: question.type,
        answered: false,
        reason: "only A and AAAA are answered",
      });
      reply(q, rinfo, RCODE.REFUSED);
      return;
    }
    if (!opts.allowed(name)) {
      opts.log({
        name,
        type: question.type,
        answered: false,
        reason: "name not on the job's allow-list",
      });
      reply(q, rinfo, RCODE.NXDOMAIN);
      return;
    }
    const family = question.type === "A" ? 4 : 6;
    opts
      .resolve(name)
      .then((all) => {
        const ok = all.filter((a) => (family === 4) === !a.includes(":") && opts.admit(a));
        opts.log({
          name,
          type: question.type,
          answered: ok.length > 0,
          ...(ok.length === 0 ? { reason: "no admissible address" } : {}),
        });
        const type = question.type === "A" ? "A" : "AAAA";
        reply(
          q,
          rinfo,
          ok.length === 0 ? RCODE.NXDOMAIN : RCODE.NOERROR,
          ok.map((data) => ({ type, name: question.name, ttl: 5, class: "IN" as const, data })),
        );
      })
      .catch(() => {
        opts.log({ name, type: question.type, answered: false, reason: "upstream failed" });
        reply(q, rinfo, RCODE.SERVFAIL);
      });
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(opts.port ?? 0, opts.host, () => resolve());
  });
  return {
    socket: sock,
    port: sock.address().port,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}
