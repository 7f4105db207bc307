// Sandbox egress rules (docs/sandbox.md, "Egress"): what a job's `network.allow` may name, what the
// operator's configuration admits, and the per-connection verdict the worker's proxy asks for.
// Pure (no I/O): the API admits rules with it before signing, the worker's proxy checks every
// resolved address with it before connecting.
import { z } from "zod";
import { canonicalJson, sha256Hex } from "../encoding";
import {
  type Cidr,
  cidrContains,
  cidrProblem,
  classifyIp,
  formatIp,
  type IpAddress,
  parseCidr,
  parseIp,
  unmapIp,
} from "../schemapin/addresses";

/** One rule of `network.allow` as signed in the envelope. */
export interface EgressRule {
  domain?: string;
  cidr?: string;
  ports: number[];
  protocol: "tcp" | "udp";
}

/** An operator's exception to the deny ranges: a CIDR and the ports it opens (all when null). */
export interface EgressException {
  cidr: Cidr;
  text: string;
  ports: readonly number[] | null;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Why a `domain` rule is not a name the resolver can match: lower-case LDH labels, exact or
 * `*.suffix` (the wildcard only as the whole first label), at least two labels, never an IP.
 */
export function domainProblem(text: string): string | null {
  if (text.length > 253) return "longer than 253 characters";
  const name = text.startsWith("*.") ? text.slice(2) : text;
  const labels = name.split(".");
  if (labels.length < 2) return "needs at least two labels (a wildcard needs a suffix of two)";
  if (!labels.every((l) => LABEL.test(l)))
    return "labels are lower-case letters, digits and inner hyphens, 1-63 characters; a wildcard only as `*.`";
  if (parseIp(name) !== null || /^[0-9.]+$/.test(name)) return "an IP address: use a cidr rule";
  return null;
}

/** Whether `name` (lower-case, no trailing dot) is matched by a rule's domain. */
export function domainMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("*."))
    return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return name === pattern;
}

/** Parses `10.0.0.0/8:6333`, `10.0.0.0/8:6333,6334` or `10.0.0.0/8` (every port). */
export function parseException(text: string): EgressException | null {
  // IPv6 CIDRs hold colons: ports come only after the prefix length, which is required.
  const slash = text.lastIndexOf("/");
  if (slash < 0) return null;
  const after = text.slice(slash);
  const pm = /^\/(\d{1,3})(?::(\d{1,5}(?:,\d{1,5})*))?$/.exec(after);
  if (!pm) return null;
  const cidrText = `${text.slice(0, slash)}/${pm[1]}`;
  const c = parseCidr(cidrText);
  if (!c) return null;
  const ports = pm[2] === undefined ? null : pm[2].split(",").map(Number);
  if (ports?.some((p) => p < 1 || p > 65535)) return null;
  return { cidr: normalise(c), text, ports };
}

/** IPv4-mapped IPv6 CIDRs are the IPv4 CIDR they name. */
function normalise(c: Cidr): Cidr {
  if (
    c.family === 6 &&
    c.prefix >= 96 &&
    c.bytes.slice(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))
  )
    return { family: 4, bytes: c.bytes.slice(12), prefix: c.prefix - 96 };
  return c;
}

const overlaps = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family &&
  (cidrContains(a, { family: b.family, bytes: b.bytes }) ||
    cidrContains(b, { family: a.family, bytes: a.bytes }));

/** `inner` lies wholly inside `outer`. */
const within = (inner: Cidr, outer: Cidr): boolean =>
  inner.family === outer.family &&
  inner.prefix >= outer.prefix &&
  cidrContains(outer, { family: inner.family, bytes: inner.bytes });

/**
 * Ranges a job never reaches unless an operator exception covers them: everything that is not
 * public unicast (loopback, link-local with the metadata address, private, CGNAT, multicast, ...).
 * A cidr rule overlapping one of these is refused at admission; the proxy checks every address.
 */
const DENY_RANGES: readonly Cidr[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/3",
  "168.63.129.16/32",
  "::/8",
  "64:ff9b::/96",
  "100::/64",
  "2001::/23",
  "2001:db8::/32",
  "2002::/16",
  "fc00::/7",
  "fe80::/10",
  "fec0::/10",
  "ff00::/8",
].map((t) => {
  const c = parseCidr(t);
  if (!c) throw new Error(`bad built-in CIDR ${t}`);
  return c;
});

export interface EgressSettings {
  /** Operator exceptions to the deny ranges (`[network] allow_cidrs`). */
  exceptions: readonly EgressException[];
  /** More ranges denied (`[network] deny_cidrs`), never opened by an exception. */
  deny: readonly Cidr[];
}

/** Parses the configuration's texts (validated by the config schema already). */
export function egressSettings(
  allowCidrs: readonly string[],
  denyCidrs: readonly string[],
): EgressSettings {
  return {
    exceptions: allowCidrs.map((t) => {
      const e = parseException(t);
      if (!e) throw new Error(`[network] allow_cidrs: "${t}" is not cidr[:port,...]`);
      return e;
    }),
    deny: denyCidrs.map((t) => {
      const c = parseCidr(t);
      if (!c) throw new Error(`[network] deny_cidrs: "${t}" is not a CIDR`);
      return normalise(c);
    }),
  };
}

const portsCovered = (want: readonly number[], have: readonly number[] | null) =>
  have === null || want.every((p) => have.includes(p));

/** Why the configuration refuses a job's rule, or null when it is admitted. */
export function ruleRefusal(rule: EgressRule, s: EgressSettings): string | null {
  if (rule.protocol !== "tcp")
    return "only tcp is carried (UDP other than the filtered DNS is not)";
  if (rule.domain !== undefined) return domainProblem(rule.domain);
  if (rule.cidr === undefined) return "names neither domain nor cidr";
  const parsed = parseCidr(rule.cidr);
  if (!parsed) return "not a CIDR";
  const c = normalise(parsed);
  if (s.deny.some((d) => overlaps(d, c)))
    return `${rule.cidr} overlaps a range the operator denies`;
  const excepted = s.exceptions.some((e) => within(c, e.cidr) && portsCovered(rule.ports, e.ports));
  if (excepted) return null;
  if (DENY_RANGES.some((d) => overlaps(d, c)))
    return `${rule.cidr} overlaps a non-public range no [network] allow_cidrs exception opens for ports ${rule.ports.join(",")}`;
  return null;
}

export type ConnectVerdict =
  | { ok: true; address: string }
  | { ok: false; address: string; reason: string };

/**
 * The proxy's check for one resolved address and port, against the deny ranges, the host's own
 * addresses (and the proxy's and Redis'), and the operator's exceptions. The job's rules are
 * checked by the caller (which rule admitted the name or address).
 */
export function checkDestination(
  addressText: string,
  port: number,
  s: EgressSettings,
  hostAddresses: readonly string[],
): ConnectVerdict {
  const parsed = parseIp(addressText);
  if (!parsed) return { ok: false, address: addressText.slice(0, 64), reason: "not an IP address" };
  const ip: IpAddress = unmapIp(parsed);
  const address = formatIp(ip);
  const refuse = (reason: string): ConnectVerdict => ({ ok: false, address, reason });
  if (s.deny.some((d) => cidrContains(d, ip)))
    return refuse(`${address} is in a range the operator denies`);
  if (
    hostAddresses.some((h) => {
      const p = parseIp(h);
      return p !== null && formatIp(unmapIp(p)) === address;
    })
  )
    return refuse(`${address} is an address of this host (or its proxy or Redis)`);
  const k = classifyIp(ip).class;
  const exception = s.exceptions.find(
    (e) => cidrContains(e.cidr, ip) && portsCovered([port], e.ports),
  );
  if (k === "cloud-metadata") {
    const exact = exception && exception.cidr.prefix === (ip.family === 4 ? 32 : 128);
    return exact ? { ok: true, address } : refuse(`${address} is a cloud-metadata address`);
  }
  if (k === "unspecified" || k === "multicast" || k === "broadcast" || k === "reserved")
    return refuse(`${address} is a ${k} address, never connectable`);
  if (exception) return { ok: true, address };
  if (k !== "public")
    return refuse(`${address} is a ${k} address and no exception opens port ${port}`);
  return { ok: true, address };
}

/** The rule that admits `host` (a name or an IP literal) on `port`, if any. */
export function matchRule(
  rules: readonly EgressRule[],
  host: string,
  port: number,
): EgressRule | undefined {
  const ip = parseIp(host);
  return rules.find((r) => {
    if (r.protocol !== "tcp" || !r.ports.includes(port)) return false;
    if (ip) {
      if (r.cidr === undefined) return false;
      const c = parseCidr(r.cidr);
      return c !== null && cidrContains(normalise(c), unmapIp(ip));
    }
    return r.domain !== undefined && domainMatches(r.domain, host);
  });
}

/** Whether a name is asked for by any domain rule (the resolver answers only these). */
export function nameAllowed(rules: readonly EgressRule[], name: string): boolean {
  return rules.some((r) => r.domain !== undefined && domainMatches(r.domain, name));
}

/**
 * One entry of a job's connection log (docs/sandbox.md, "Egress"), allowed or refused. The worker
 * reports the log beside its signed result; the API recomputes the signed digest from it.
 */
export const connectionLogEntrySchema = z.strictObject({
  /** Milliseconds since the job's proxy started. */
  at: z.number().int().min(0).max(86_400_000),
  // direct: a flow the job network's firewall dropped (the job tried to bypass the proxy).
  kind: z.enum(["connect", "http", "direct"]),
  host: z.string().max(256),
  port: z.number().int().min(0).max(65535),
  address: z.string().max(64).optional(),
  allowed: z.boolean(),
  reason: z.string().max(512).optional(),
  bytesUp: z.number().int().min(0),
  bytesDown: z.number().int().min(0),
  durationMs: z.number().int().min(0).max(86_400_000),
});
export type ConnectionLogEntry = z.infer<typeof connectionLogEntrySchema>;

/** The per-job summary the signed result carries. */
export const egressSummarySchema = z.strictObject({
  connections: z.number().int().min(0),
  refused: z.number().int().min(0),
  bytesUp: z.number().int().min(0),
  bytesDown: z.number().int().min(0),
  /** sha256 (hex) of the log's entries, each RFC 8785 canonical JSON, joined by "\n". */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});
export type EgressSummary = z.infer<typeof egressSummarySchema>;

/** Most log entries a result report carries; a longer log is summarised only. */
export const MAX_REPORTED_LOG = 4096;

export const connectionLogDigest = (log: readonly ConnectionLogEntry[]): string =>
  sha256Hex(log.map((e) => canonicalJson(e)).join("\n"));

export function summarizeConnectionLog(log: readonly ConnectionLogEntry[]): EgressSummary {
  return {
    connections: log.filter((e) => e.allowed).length,
    refused: log.filter((e) => !e.allowed).length,
    bytesUp: log.reduce((n, e) => n + e.bytesUp, 0),
    bytesDown: log.reduce((n, e) => n + e.bytesDown, 0),
    digest: connectionLogDigest(log),
  };
}

/** Most `egress.denied` audit events one job's result produces; its summary counts the rest. */
export const MAX_DENIED_EVENTS = 256;

/**
 * Why a reported connection log cannot stand beside its signed result, or null: a log must hash
 * to the signed digest, and a log without a signed summary is not accepted at all.
 */
export function checkEgressLog(
  result: { egress?: EgressSummary },
  log: readonly ConnectionLogEntry[] | undefined,
): string | null {
  if (!log) return null;
  if (!result.egress) return "an egress log was sent for a result that signs no egress summary";
  if (connectionLogDigest(log) !== result.egress.digest)
    return "the egress log does not hash to the signed result's egress.digest";
  return null;
}

/** The prefix of each job network carved from `[network] job_subnet_pool` (docs/sandbox.md). */
export const JOB_SUBNET_PREFIX = 28;

/** Why a `job_subnet_pool` text is unusable, or null: an IPv4 network of /8 to /28. */
export function subnetPoolProblem(text: string): string | null {
  const c = parseCidr(text);
  if (!c) return cidrProblem(text);
  if (c.family !== 4) return "must be IPv4 (job networks are IPv4; IPv6 from them is dropped)";
  if (c.prefix < 8 || c.prefix > JOB_SUBNET_PREFIX)
    return `prefix must be 8..${JOB_SUBNET_PREFIX} (each job takes a /${JOB_SUBNET_PREFIX})`;
  return null;
}

/** How many job networks the pool holds. */
export function subnetPoolSize(pool: string): number {
  const c = parseCidr(pool);
  return c ? 2 ** (JOB_SUBNET_PREFIX - c.prefix) : 0;
}

/** The IPv4 address n (a 32-bit number), in dotted form. */
function ipv4(n: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, n >>> 0);
  return formatIp({ family: 4, bytes });
}

/** A parsed IPv4 CIDR's network address as a 32-bit number, or null for anything else. */
function ipv4Base(text: string): number | null {
  const c = parseCidr(text);
  if (c?.family !== 4) return null;
  return new DataView(c.bytes.buffer, c.bytes.byteOffset, 4).getUint32(0);
}

/** The pool's i-th /28 (i modulo the pool's size), as `a.b.c.d/28`. */
export function subnetOfPool(pool: string, i: number): string {
  const base = ipv4Base(pool);
  if (base === null) throw new Error(`job_subnet_pool: "${pool}" is not an IPv4 CIDR`);
  const size = subnetPoolSize(pool);
  const n = (base + (((i % size) + size) % size) * 2 ** (32 - JOB_SUBNET_PREFIX)) >>> 0;
  return `${ipv4(n)}/${JOB_SUBNET_PREFIX}`;
}

/** A pool subnet's gateway (the host's address on the job's bridge): its first address. */
export function subnetGateway(subnet: string): string {
  const base = ipv4Base(subnet);
  if (base === null) throw new Error(`"${subnet}" is not an IPv4 CIDR`);
  return ipv4(base + 1);
}
