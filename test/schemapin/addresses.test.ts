// The pure address policy of SchemaPin discovery (shared/schemapin/addresses.ts), the textual
// domain check and the [tofu] discovery settings. No network.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import {
  AddressPolicy,
  classifyIp,
  formatIp,
  normalizeDomain,
  parseCidr,
  parseIp,
  parseResolverAddress,
  SchemaPinError,
} from "../../shared/schemapin";

const cls = (text: string): string => {
  const ip = parseIp(text);
  if (!ip) throw new Error(`unparseable ${text}`);
  return classifyIp(ip).class;
};

describe("parseIp", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::", "::"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["::ffff:127.0.0.1", "::ffff:7f00:1"],
    ["0:0:0:0:0:ffff:7f00:1", "::ffff:7f00:1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["fe80::1", "fe80::1"],
  ])("reads %s as %s", (text, canonical) => {
    const ip = parseIp(text);
    expect(ip).not.toBeNull();
    expect(formatIp(ip!)).toBe(canonical);
  });

  it.each([
    "127.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "2130706433",
    "01.2.3.4",
    "256.0.0.1",
    "1.2.3.4.5",
    ":::",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "::1.2.3",
    "fe80::1%eth0",
    "",
    "example.com",
  ])("refuses %j (URL-only notations and garbage are not DNS answers)", (text) => {
    expect(parseIp(text)).toBeNull();
  });
});

describe("classifyIp", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["1.1.1.1", "public"],
    ["2606:4700:4700::1111", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["10.0.0.5", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["172.32.0.1", "public"],
    ["100.64.0.1", "cgnat"],
    ["100.127.255.255", "cgnat"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "cloud-metadata"],
    ["::ffff:169.254.169.254", "cloud-metadata"],
    ["fd00:ec2::254", "cloud-metadata"],
    ["100.100.100.200", "cloud-metadata"],
    ["168.63.129.16", "cloud-metadata"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "documentation"],
    ["2001:db8::1", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["192.0.0.8", "protocol-assignment"],
    ["2001::1", "protocol-assignment"], // Teredo
    ["fc00::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["fec0::1", "site-local"],
    ["::127.0.0.1", "ipv4-compatible"],
    ["64:ff9b::a00:5", "private"], // NAT64 of 10.0.0.5
    ["64:ff9b::808:808", "public"], // NAT64 of 8.8.8.8
    ["2002:7f00:1::1", "loopback"], // 6to4 of 127.0.0.1
    ["2002:a9fe:a9fe::1", "cloud-metadata"], // 6to4 of 169.254.169.254
    ["4000::1", "not-global-unicast"],
  ])("%s is %s", (text, expected) => {
    expect(cls(text)).toBe(expected);
  });
});

describe("AddressPolicy", () => {
  const none = new AddressPolicy();

  it("admits only public addresses by default", () => {
    expect(none.check("8.8.8.8")).toMatchObject({ ok: true, address: "8.8.8.8", family: 4 });
    for (const a of ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "::ffff:127.0.0.1"]) {
      expect(none.check(a)).toMatchObject({ ok: false });
    }
  });

  it("an IPv4-mapped answer is judged (and connected to) as the IPv4 address", () => {
    expect(none.check("::ffff:10.0.0.5")).toMatchObject({ ok: false, address: "10.0.0.5" });
    const local = new AddressPolicy({ allow: ["127.0.0.0/8"] });
    expect(local.check("::ffff:127.0.0.1")).toMatchObject({
      ok: true,
      address: "127.0.0.1",
      family: 4,
    });
  });

  it("refuses this host's own addresses, even public ones", () => {
    expect(none.check("203.0.114.7", ["203.0.114.7"])).toMatchObject({
      ok: false,
      class: "host-address",
    });
    expect(none.check("::ffff:203.0.114.7", ["203.0.114.7"])).toMatchObject({ ok: false });
  });

  it("the allow-list admits what it covers, and nothing else", () => {
    const p = new AddressPolicy({ allow: ["127.0.0.0/8", "10.1.0.0/16", "fd00:1::/32"] });
    expect(p.check("127.0.0.9").ok).toBe(true);
    expect(p.check("10.1.2.3").ok).toBe(true);
    expect(p.check("fd00:1::5").ok).toBe(true);
    expect(p.check("10.2.0.1").ok).toBe(false);
    expect(p.check("::1").ok).toBe(false);
    // An allow-listed address stays allowed when it is also this host's.
    expect(p.check("127.0.0.1", ["127.0.0.1"]).ok).toBe(true);
  });

  it("cloud metadata needs an exact entry; unspecified, multicast, broadcast and reserved never pass", () => {
    const broad = new AddressPolicy({ allow: ["0.0.0.0/0", "::/0"] });
    for (const a of [
      "169.254.169.254",
      "fd00:ec2::254",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "240.0.0.1",
      "::",
    ]) {
      expect(broad.check(a)).toMatchObject({ ok: false });
    }
    expect(broad.check("10.0.0.5").ok).toBe(true);
    expect(new AddressPolicy({ allow: ["169.254.169.254"] }).check("169.254.169.254").ok).toBe(
      true,
    );
  });

  it("an unparseable answer is refused", () => {
    expect(none.check("0x7f.1")).toMatchObject({ ok: false, class: "unparseable" });
  });

  it("refuses a bad allow-list entry at construction", () => {
    expect(() => new AddressPolicy({ allow: ["127.0.0.1/8"] })).toThrow(/host bits/);
    expect(() => new AddressPolicy({ allow: ["localhost"] })).toThrow(/not an IP/);
  });
});

describe("parseCidr and parseResolverAddress", () => {
  it("parses CIDRs and host routes, refusing host bits and bad prefixes", () => {
    expect(parseCidr("127.0.0.0/8")).toMatchObject({ family: 4, prefix: 8 });
    expect(parseCidr("::1")).toMatchObject({ family: 6, prefix: 128 });
    expect(parseCidr("fd00::/8")).toMatchObject({ family: 6, prefix: 8 });
    for (const bad of ["127.0.0.1/8", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10/8", "x/1"]) {
      expect(parseCidr(bad)).toBeNull();
    }
  });

  it("parses resolver addresses with optional ports", () => {
    expect(parseResolverAddress("127.0.0.1")).toEqual({ address: "127.0.0.1", port: 53 });
    expect(parseResolverAddress("127.0.0.1:5353")).toEqual({ address: "127.0.0.1", port: 5353 });
    expect(parseResolverAddress("[::1]:53")).toEqual({ address: "::1", port: 53 });
    expect(parseResolverAddress("::1")).toEqual({ address: "::1", port: 53 });
    expect(parseResolverAddress("[::1]")).toEqual({ address: "::1", port: 53 });
    for (const bad of ["dns.google", "127.0.0.1:0", "127.0.0.1:70000", "[::1]:", ""]) {
      expect(parseResolverAddress(bad)).toBeNull();
    }
  });
});

describe("normalizeDomain refuses names that are IP literals or never public", () => {
  it.each([
    ["127.0.0.0x1", "ip-literal"], // the URL parser reads it as 127.0.0.1
    ["1.2.3.0x7f", "ip-literal"],
    ["10.0.0.0x5", "ip-literal"],
    ["0x7f.0.0.1", "ip-literal"],
    ["0xa9fea9fe", "ip-literal"],
    ["tools.0x", "ip-literal"],
    ["127.0.0.1", "ip-literal"],
    ["[::1]", "ip-literal"],
    ["::ffff:127.0.0.1", "ip-literal"],
    ["localhost", "special-use-name"],
    ["api.localhost", "special-use-name"],
    ["metadata.google.internal", "special-use-name"],
    ["printer.local", "special-use-name"],
    ["nas.home.arpa", "special-use-name"],
    ["router.lan", "special-use-name"],
    ["intranet", "special-use-name"],
    ["wiki", "single-label-name"],
  ])("%s (%s)", (domain, kind) => {
    let err: unknown;
    try {
      normalizeDomain(domain);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchemaPinError);
    expect((err as SchemaPinError).refusal?.kind).toBe(kind);
  });

  it("still accepts ordinary names, including hex-looking labels that are not last", () => {
    expect(normalizeDomain("Tools.Example")).toBe("tools.example");
    expect(normalizeDomain("0x7f.example.com")).toBe("0x7f.example.com");
    expect(normalizeDomain("127.0.0.1.example.com")).toBe("127.0.0.1.example.com");
    expect(normalizeDomain("tools.0x7g")).toBe("tools.0x7g");
  });
});

describe("[tofu] discovery settings", () => {
  it("default to the secure choice: network discovery, nothing private allowed, the system resolver, no bundles", () => {
    const { tofu } = loadConfig();
    expect(tofu).toMatchObject({
      discovery: "network",
      discovery_allow_cidrs: [],
      discovery_resolvers: [],
      trust_bundles: [],
      bundle_authorities: [],
    });
  });

  it("are read from TOML and from SIGIL_TOFU_* / SYMBIONT_TOFU_* variables", () => {
    const fromToml = loadConfig({
      toml: {
        path: "sigil.toml",
        text: '[tofu]\ndiscovery_allow_cidrs = ["127.0.0.0/8", "fd00::/8"]\ndiscovery_resolvers = ["127.0.0.1:5353"]\ndiscovery = "bundles-only"\n',
      },
    });
    expect(fromToml.tofu.discovery_allow_cidrs).toEqual(["127.0.0.0/8", "fd00::/8"]);
    expect(fromToml.tofu.discovery).toBe("bundles-only");
    const fromEnv = loadConfig({
      env: {
        SYMBIONT_TOFU_DISCOVERY_RESOLVERS: '["[::1]:53"]',
        SIGIL_TOFU_BUNDLE_AUTHORITIES: `["sha256:${"a".repeat(64)}"]`,
        SIGIL_TOFU_TRUST_BUNDLES: '["/etc/sigil/bundle.json"]',
      },
    });
    expect(fromEnv.tofu.discovery_resolvers).toEqual(["[::1]:53"]);
    expect(fromEnv.tofu.trust_bundles).toEqual(["/etc/sigil/bundle.json"]);
  });

  it.each([
    [{ SIGIL_TOFU_DISCOVERY_ALLOW_CIDRS: '["127.0.0.1/8"]' }, /discovery_allow_cidrs.*host bits/],
    [{ SIGIL_TOFU_DISCOVERY_ALLOW_CIDRS: '["everything"]' }, /discovery_allow_cidrs/],
    [{ SIGIL_TOFU_DISCOVERY_RESOLVERS: '["dns.google"]' }, /discovery_resolvers/],
    [{ SIGIL_TOFU_DISCOVERY: "dns-only" }, /tofu.discovery/],
    [{ SIGIL_TOFU_TRUST_BUNDLES: '["/b.json"]' }, /trust_bundles need bundle_authorities/],
    [{ SIGIL_TOFU_BUNDLE_AUTHORITIES: '["sha256:xyz"]' }, /bundle_authorities/],
  ])("refuse %j with a message naming the key", (env, message) => {
    expect(() => loadConfig({ env })).toThrow(message);
  });
});
