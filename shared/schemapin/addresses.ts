// Which IP addresses SchemaPin discovery may connect to (docs/schemapin.md, "Discovery without
// trusting the network"). Pure: parsing, CIDR matching and the special-purpose address registries
// (IANA IPv4/IPv6 special-purpose registries, RFC 6890 and successors). The Node adapter resolves
// names and asks `AddressPolicy.check` about every answer before it connects to one of them.

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** Why an address is not public. "public" is the only class discovery connects to by default. */
export type AddressClass =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "cloud-metadata"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "documentation"
  | "benchmarking"
  | "protocol-assignment"
  | "unique-local"
  | "site-local"
  | "ipv4-compatible"
  | "not-global-unicast";

const DEC_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

/** Canonical dotted-quad IPv4 only (no octal, hex or short forms: those are for URLs, not DNS). */
function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DEC_OCTET.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** RFC 4291 text form, with an optional trailing dotted quad; no zone identifiers. */
function parseIpv6(text: string): Uint8Array | null {
  if (text.length > 45 || text.includes("%")) return null;
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return null;
  let s = text;
  let tail: Uint8Array | null = null;
  if (text.slice(lastColon + 1).includes(".")) {
    tail = parseIpv4(text.slice(lastColon + 1));
    if (!tail) return null;
    s = text.slice(0, lastColon + 1);
    if (!s.endsWith("::")) s = s.slice(0, -1);
  }
  const wanted = tail ? 6 : 8;
  const groupsOf = (part: string): string[] | null => {
    if (part === "") return [];
    const g = part.split(":");
    return g.every((x) => HEXTET.test(x)) ? g : null;
  };
  let groups: string[] | null;
  const gap = s.indexOf("::");
  if (gap < 0) {
    groups = groupsOf(s);
  } else {
    if (s.indexOf("::", gap + 1) >= 0) return null;
    const left = groupsOf(s.slice(0, gap));
    const right = groupsOf(s.slice(gap + 2));
    if (!left || !right || left.length + right.length >= wanted) return null;
    groups = [...left, ...Array<string>(wanted - left.length - right.length).fill("0"), ...right];
  }
  if (!groups || groups.length !== wanted) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}

/**
 * Parses an IP address as DNS answers and operators write it: a canonical dotted quad, or IPv6
 * text (optionally in brackets). Returns null for anything else, including URL-only IPv4 forms.
 */
export function parseIp(text: string): IpAddress | null {
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (t.includes(":")) {
    const b = parseIpv6(t);
    return b ? { family: 6, bytes: b } : null;
  }
  const b = parseIpv4(t);
  return b ? { family: 4, bytes: b } : null;
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // RFC 5952: compress the longest run of two or more zero groups (the first of equals).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** "a.b.c.d/n", "v6/n", or a bare address (a host route). Host bits must be zero. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  for (let bit = prefix; bit < max; bit++) {
    if ((ip.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return null;
  }
  return { family: ip.family, bytes: ip.bytes, prefix };
}

/** Why `parseCidr` refused a text, for configuration errors. */
export function cidrProblem(text: string): string | null {
  if (parseCidr(text)) return null;
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return "not an IP address or CIDR (canonical dotted quad or IPv6 text, then /prefix)";
  const max = ip.family === 4 ? 32 : 128;
  const p = slash < 0 ? "" : text.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return `prefix must be 0..${max}`;
  return "host bits are set below the prefix (write the network address)";
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.family !== ip.family) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (c.bytes[i] !== ip.bytes[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (c.bytes[full]! & mask) === (ip.bytes[full]! & mask);
}

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad built-in CIDR ${text}`);
  return c;
};

// Cloud provider metadata and host-agent endpoints. Most sit inside link-local, CGNAT or ULA space
// already; Azure's WireServer is a public-looking address. Named so a refusal says what it is.
const METADATA = [
  "169.254.169.254/32", // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle (IMDS)
  "169.254.170.2/32", // AWS ECS task metadata
  "168.63.129.16/32", // Azure WireServer / host agent
  "100.100.100.200/32", // Alibaba Cloud
  "192.0.0.192/32", // Oracle Cloud (legacy)
  "fd00:ec2::254/128", // AWS IMDS over IPv6
].map(cidr);

const V4: readonly [Cidr, AddressClass][] = (
  [
    ["0.0.0.0/8", "unspecified"], // "this network"; 0.0.0.0 reaches the local host on Linux
    ["10.0.0.0/8", "private"],
    ["100.64.0.0/10", "cgnat"],
    ["127.0.0.0/8", "loopback"],
    ["169.254.0.0/16", "link-local"],
    ["172.16.0.0/12", "private"],
    ["192.0.0.0/24", "protocol-assignment"],
    ["192.0.2.0/24", "documentation"],
    ["192.88.99.0/24", "reserved"], // deprecated 6to4 relay anycast
    ["192.168.0.0/16", "private"],
    ["198.18.0.0/15", "benchmarking"],
    ["198.51.100.0/24", "documentation"],
    ["203.0.113.0/24", "documentation"],
    ["224.0.0.0/4", "multicast"],
    ["255.255.255.255/32", "broadcast"],
    ["240.0.0.0/4", "reserved"],
  ] as const
).map(([c, k]) => [cidr(c), k]);

const V6: readonly [Cidr, AddressClass][] = (
  [
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
    ["::/96", "ipv4-compatible"], // deprecated ::a.b.c.d (mapped ::ffff:0:0/96 is handled first)
    ["64:ff9b:1::/48", "private"], // local-use NAT64
    ["100::/64", "reserved"], // discard-only
    ["2001:db8::/32", "documentation"],
    ["2001::/23", "protocol-assignment"], // Teredo, ORCHID, benchmarking, ...
    ["3fff::/20", "documentation"],
    ["fc00::/7", "unique-local"],
    ["fe80::/10", "link-local"],
    ["fec0::/10", "site-local"],
    ["ff00::/8", "multicast"],
  ] as const
).map(([c, k]) => [cidr(c), k]);

const GLOBAL_UNICAST_V6 = cidr("2000::/3");
const MAPPED = cidr("::ffff:0:0/96");
const NAT64 = cidr("64:ff9b::/96");
const SIX_TO_FOUR = cidr("2002::/16");

export interface Classification {
  class: AddressClass;
  /** For IPv4-mapped, NAT64 and 6to4 addresses: the IPv4 address they carry. */
  embedded?: IpAddress;
}

/** IPv4-mapped (::ffff:a.b.c.d) addresses are the IPv4 address they name. */
export function unmapIp(ip: IpAddress): IpAddress {
  return ip.family === 6 && cidrContains(MAPPED, ip)
    ? { family: 4, bytes: ip.bytes.slice(12) }
    : ip;
}

export function classifyIp(input: IpAddress): Classification {
  const ip = unmapIp(input);
  if (METADATA.some((c) => cidrContains(c, ip))) return { class: "cloud-metadata" };
  if (ip.family === 4) {
    for (const [c, k] of V4) if (cidrContains(c, ip)) return { class: k };
    return { class: "public" };
  }
  // Addresses that carry an IPv4 address are as public as the address they carry.
  const carried = cidrContains(NAT64, ip)
    ? ip.bytes.slice(12)
    : cidrContains(SIX_TO_FOUR, ip)
      ? ip.bytes.slice(2, 6)
      : null;
  if (carried) {
    const embedded: IpAddress = { family: 4, bytes: carried };
    return { class: classifyIp(embedded).class, embedded };
  }
  for (const [c, k] of V6) if (cidrContains(c, ip)) return { class: k };
  if (!cidrContains(GLOBAL_UNICAST_V6, ip)) return { class: "not-global-unicast" };
  return { class: "public" };
}

/** Classes no allow-list entry unlocks: nothing legitimate serves HTTPS there. */
const NEVER: ReadonlySet<AddressClass> = new Set([
  "unspecified",
  "multicast",
  "broadcast",
  "reserved",
]);

export type AddressVerdict =
  | { ok: true; address: string; family: 4 | 6 }
  | {
      ok: false;
      address: string;
      class: AddressClass | "host-address" | "unparseable";
      reason: string;
    };

export interface AddressPolicyOptions {
  /** CIDRs allowed although not public (`[tofu] discovery_allow_cidrs`). */
  allow?: readonly string[];
}

/**
 * Public addresses pass; everything else is refused unless an operator's allow-list covers it.
 * Cloud metadata addresses need an allow-list entry naming exactly that address (a broad private
 * range never unlocks them), and unspecified, multicast, broadcast and reserved space never pass.
 */
export class AddressPolicy {
  private readonly allow: readonly Cidr[];

  constructor(opts: AddressPolicyOptions = {}) {
    this.allow = (opts.allow ?? []).map((t) => {
      const c = parseCidr(t);
      if (!c) throw new Error(`discovery_allow_cidrs: "${t}": ${cidrProblem(t)}`);
      return c.family === 6 && cidrContains(MAPPED, c) && c.prefix >= 96
        ? { family: 4 as const, bytes: c.bytes.slice(12), prefix: c.prefix - 96 }
        : c;
    });
  }

  get allowList(): readonly Cidr[] {
    return this.allow;
  }

  /**
   * The verdict for one resolved address. `hostAddresses` are this machine's own addresses
   * (connecting to them reaches services bound to all interfaces); they count as non-public.
   */
  check(text: string, hostAddresses: readonly string[] = []): AddressVerdict {
    const parsed = parseIp(text);
    if (!parsed) {
      return {
        ok: false,
        address: text.slice(0, 64),
        class: "unparseable",
        reason: "not an IP address",
      };
    }
    const ip = unmapIp(parsed);
    const address = formatIp(ip);
    const refuse = (k: AddressClass | "host-address", why: string): AddressVerdict => ({
      ok: false,
      address,
      class: k,
      reason: `${address} is ${why}`,
    });
    const { class: k, embedded } = classifyIp(ip);
    const carried = embedded ? ` (it carries ${formatIp(embedded)})` : "";
    if (NEVER.has(k)) return refuse(k, `${article(k)} ${k} address${carried}, never connectable`);
    const listed = this.allow.filter((c) => cidrContains(c, ip));
    const exact = listed.some((c) => c.prefix === (ip.family === 4 ? 32 : 128));
    if (k === "cloud-metadata" && !exact) {
      return refuse(k, "a cloud-metadata address (only an exact allow-list entry admits it)");
    }
    if (listed.length > 0) return { ok: true, address, family: ip.family };
    if (k !== "public") {
      return refuse(k, `${article(k)} ${k} address${carried}, not a public one`);
    }
    if (
      hostAddresses.some((h) => {
        const p = parseIp(h);
        return p !== null && formatIp(unmapIp(p)) === address;
      })
    ) {
      return refuse("host-address", "an address of this host");
    }
    return { ok: true, address, family: ip.family };
  }
}

const article = (k: string): string =>
  k === "unspecified" || k === "ipv4-compatible" ? "an" : "a";

/** A DNS server address as `[tofu] discovery_resolvers` takes it: "ip", "ip:port", "[v6]:port". */
export function parseResolverAddress(text: string): { address: string; port: number } | null {
  let host = text;
  let port = 53;
  const v6port = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const v4port = /^([0-9.]+):(\d{1,5})$/.exec(text);
  const m = v6port ?? v4port;
  if (m) {
    host = m[1]!;
    port = Number(m[2]);
    if (port < 1 || port > 65535) return null;
  }
  const ip = parseIp(host);
  return ip ? { address: formatIp(ip), port } : null;
}
