// SchemaPin discovery through the Node pinned fetch, against a DNS server and HTTP(S) servers that
// the test runs on loopback. Names that resolve to non-public addresses are refused before any
// connection; a rebinding DNS server cannot move the connection; redirects off the origin are
// refused; with the operator's allow-list, discovery works end to end. No traffic leaves loopback.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  PinnedDiscoveryFetch,
  type PinnedFetchOptions,
} from "../../functions/node/discovery-fetch";
import {
  type HttpDiscoveryOptions,
  HttpDiscoveryResolver,
  SchemaPinError,
  WELL_KNOWN_PATH,
} from "../../shared/schemapin";
import { ConnectionWatch, LoopbackServer, selfSignedCert } from "./discovery-servers";
import { type Answer, staticZone, TestDnsServer } from "./dns-server";
import { wellKnownFixture } from "./helpers";

const tls = selfSignedCert();
const watch = new ConnectionWatch();

// Names → answers. Rebinding names answer differently from one query to the next.
const REFUSED: Record<string, { answers: string[]; kind: string; address: string }> = {
  "loopback.example": { answers: ["127.0.0.1"], kind: "loopback", address: "127.0.0.1" },
  "private.example": { answers: ["10.0.0.5"], kind: "private", address: "10.0.0.5" },
  "metadata.example": {
    answers: ["169.254.169.254"],
    kind: "cloud-metadata",
    address: "169.254.169.254",
  },
  "v6loop.example": { answers: ["::1"], kind: "loopback", address: "::1" },
  "mapped.example": { answers: ["::ffff:127.0.0.1"], kind: "loopback", address: "127.0.0.1" },
  "mapped-imds.example": {
    answers: ["::ffff:169.254.169.254"],
    kind: "cloud-metadata",
    address: "169.254.169.254",
  },
  "cgnat.example": { answers: ["100.64.0.1"], kind: "cgnat", address: "100.64.0.1" },
  "linklocal.example": { answers: ["169.254.1.1"], kind: "link-local", address: "169.254.1.1" },
  "v6linklocal.example": { answers: ["fe80::1"], kind: "link-local", address: "fe80::1" },
  "ula.example": { answers: ["fd12:3456::1"], kind: "unique-local", address: "fd12:3456::1" },
  "imds6.example": {
    answers: ["fd00:ec2::254"],
    kind: "cloud-metadata",
    address: "fd00:ec2::254",
  },
  "nat64.example": { answers: ["64:ff9b::a00:5"], kind: "private", address: "64:ff9b::a00:5" },
  "multicast.example": { answers: ["224.0.0.1"], kind: "multicast", address: "224.0.0.1" },
  "zero.example": { answers: ["0.0.0.0"], kind: "unspecified", address: "0.0.0.0" },
};

const fixed = staticZone({
  ...Object.fromEntries(Object.entries(REFUSED).map(([n, r]) => [n, r.answers])),
  "tools.example": ["127.0.0.1"],
  "rev.tools.example": ["127.0.0.1"],
  "redir.example": ["127.0.0.1"],
  "evil.example": ["127.0.0.1"],
  // One allowed answer beside a refused one: the name is refused as a whole.
  "mixed.example": ["127.0.0.1", "10.0.0.5"],
});
const rebinding: Record<string, (type: "A" | "AAAA", nth: number) => Answer> = {
  // First answer: an allow-listed address; later answers: another one (127.0.0.2 hosts a decoy).
  "rebind.example": (type, nth) =>
    type === "AAAA" ? [] : nth === 1 ? ["127.0.0.1"] : ["127.0.0.2"],
  // Same origin redirect, but the name now points at a private address: the hop is re-checked.
  "rehop.example": (type, nth) => (type === "AAAA" ? [] : nth === 1 ? ["127.0.0.1"] : ["10.0.0.5"]),
  "slow.example": () => "drop",
};
const dns = new TestDnsServer(
  (name, type, nth) => rebinding[name]?.(type, nth) ?? fixed(name, type, nth),
);
const server = new LoopbackServer("127.0.0.1", tls);
const decoy = new LoopbackServer("127.0.0.2", tls);
const plain = new LoopbackServer("127.0.0.1");

beforeAll(async () => {
  await dns.start();
  await server.start();
  await decoy.start(server.port); // same port on another loopback address
  await plain.start();
  watch.start();
});
afterAll(async () => {
  watch.stop();
  await Promise.all([dns.stop(), server.stop(), decoy.stop(), plain.stop()]);
});
afterEach(() => {
  server.routes.clear();
  decoy.routes.clear();
  plain.routes.clear();
});

const pinned = (opts: PinnedFetchOptions = {}) =>
  new PinnedDiscoveryFetch({ resolvers: [dns.address], ca: tls.cert, ...opts });

const resolver = (fetchOpts: PinnedFetchOptions = {}, extra: HttpDiscoveryOptions = {}) =>
  new HttpDiscoveryResolver({ fetch: pinned(fetchOpts).fetch, timeoutMs: 2000, ...extra });

/** Resolves `domain` and returns the SchemaPinError it fails with. */
async function refusal(p: Promise<unknown>): Promise<SchemaPinError> {
  const e = await p.then(
    () => new Error("resolved, but it should have been refused"),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SchemaPinError);
  return e as SchemaPinError;
}

const onTls = (domain: string) => ({ [domain]: `https://${domain}:${server.port}` });

describe("names that resolve to non-public addresses", () => {
  it.each(Object.entries(REFUSED))(
    "%s is refused with the reason, nothing is connected",
    async (name, r) => {
      const mark = watch.seen.length;
      const before = server.connections + decoy.connections;
      const e = await refusal(resolver().resolve(name));
      expect(e.code).toBe("discovery_fetch_failed");
      expect(e.message).toContain(r.address);
      expect(e.message).toContain(r.kind);
      expect(e.refusal).toMatchObject({ host: name, address: r.address, kind: r.kind });
      expect(dns.asked(name)).toBeGreaterThan(0);
      expect(watch.since(mark)).toEqual([]);
      expect(server.connections + decoy.connections).toBe(before);
    },
  );

  it("refuses a name whose answers mix an allowed address with a refused one", async () => {
    const mark = watch.seen.length;
    const e = await refusal(resolver({ allowCidrs: ["127.0.0.0/8"] }).resolve("mixed.example"));
    expect(e.refusal).toMatchObject({ address: "10.0.0.5", kind: "private" });
    expect(watch.since(mark)).toEqual([]);
  });

  it("a broad allow-list does not unlock cloud metadata; an exact entry does", async () => {
    const broad = await refusal(
      resolver({ allowCidrs: ["169.254.0.0/16"] }).resolve("metadata.example"),
    );
    expect(broad.refusal?.kind).toBe("cloud-metadata");
    // With the exact entry it is admitted, and the fetch then goes to 169.254.169.254: do not
    // connect there from a test; ask the policy only (see addresses.test.ts).
  });
});

describe("IP literals reach no socket, whatever their notation", () => {
  const init = () => ({
    method: "GET" as const,
    redirect: "manual" as const,
    signal: AbortSignal.timeout(2000),
    headers: {},
  });
  it.each([
    "https://127.0.0.1/x",
    "https://0x7f.1/x",
    "https://2130706433/x",
    "https://0177.0.0.1/x",
    "https://127.1/x",
    "https://127.0.0.0x1/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::ffff:7f00:1]/x",
    "https://[0:0:0:0:0:ffff:a9fe:a9fe]/x",
    "https://0xa9.0xfe.0xa9.0xfe/x",
  ])("the Node fetch refuses %s without DNS or connection", async (url) => {
    const mark = watch.seen.length;
    const queries = dns.queries.length;
    const e = await refusal(pinned().fetch(url, init()));
    expect(e.code).toBe("discovery_fetch_failed");
    expect(e.refusal?.kind).toMatch(/loopback|cloud-metadata/);
    expect(dns.queries.length).toBe(queries);
    expect(watch.since(mark)).toEqual([]);
  });

  it.each(["127.0.0.0x1", "0x7f.0.0.1", "10.0.0.0x5", "169.254.169.0xfe", "0xa9fea9fe"])(
    "the shared resolver refuses the domain %s by name (an IP literal), on every runtime",
    async (domain) => {
      const mark = watch.seen.length;
      const e = await refusal(new HttpDiscoveryResolver().resolve(domain));
      expect(e.refusal?.kind).toBe("ip-literal");
      expect(watch.since(mark)).toEqual([]);
    },
  );
});

describe("pinning and redirects", () => {
  it("a rebinding DNS server cannot move the connection: it is asked once, and its second answer is checked too", async () => {
    server.json(WELL_KNOWN_PATH, wellKnownFixture("python"));
    decoy.json(WELL_KNOWN_PATH, wellKnownFixture("javascript"));
    const r = resolver({ allowCidrs: ["127.0.0.1/32"] }, { baseUrls: onTls("rebind.example") });
    const got = await r.resolve("rebind.example");
    expect(got.discovery.public_key_pem).toBe(wellKnownFixture("python").public_key_pem);
    expect(dns.queries.filter((q) => q.name === "rebind.example" && q.type === "A")).toHaveLength(
      1,
    );
    expect(decoy.connections).toBe(0);

    // Now the name points at 127.0.0.2, which the allow-list does not cover: refused, no connection.
    const e = await refusal(r.resolve("rebind.example"));
    expect(e.refusal).toMatchObject({ address: "127.0.0.2", kind: "loopback" });
    expect(decoy.connections).toBe(0);
    expect(decoy.requests).toEqual([]);
  });

  it("a redirect to another domain is refused without resolving or connecting to it", async () => {
    server.routes.set(WELL_KNOWN_PATH, (_q, res) => {
      res.writeHead(302, { location: `https://evil.example:${server.port}/doc.json` }).end();
    });
    server.json("/doc.json", wellKnownFixture("python"));
    const before = server.requests.length;
    const e = await refusal(
      resolver({ allowCidrs: ["127.0.0.0/8"] }, { baseUrls: onTls("redir.example") }).resolve(
        "redir.example",
      ),
    );
    expect(e.message).toMatch(/redirect to another origin/);
    expect(dns.asked("evil.example")).toBe(0);
    expect(server.requests.slice(before).map((q) => q.path)).toEqual([WELL_KNOWN_PATH]);
  });

  it("a same-origin redirect's target is resolved and checked again", async () => {
    server.routes.set(WELL_KNOWN_PATH, (_q, res) => {
      res.writeHead(302, { location: "/moved.json" }).end();
    });
    server.json("/moved.json", wellKnownFixture("python"));
    const mark = watch.seen.length;
    const e = await refusal(
      resolver({ allowCidrs: ["127.0.0.0/8"] }, { baseUrls: onTls("rehop.example") }).resolve(
        "rehop.example",
      ),
    );
    expect(e.refusal).toMatchObject({ address: "10.0.0.5", kind: "private" });
    // One request went out (to 127.0.0.1), none to the rebound address.
    expect(watch.since(mark)).toEqual(["request rehop.example"]);
    expect(server.requests.at(-1)?.path).toBe(WELL_KNOWN_PATH);
  });
});

describe("with the operator's allow-list, discovery works end to end", () => {
  it("over HTTPS: the certificate is checked for the name while the socket goes to the checked address", async () => {
    server.json("/revocations.json", {
      schemapin_version: "1.2",
      domain: "tools.example",
      updated_at: "2026-01-01T00:00:00Z",
      revoked_keys: [],
    });
    server.routes.set(WELL_KNOWN_PATH, (_q, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          ...wellKnownFixture("python"),
          revocation_endpoint: "https://tools.example/revocations.json",
        }),
      );
    });
    const got = await resolver(
      { allowCidrs: ["127.0.0.0/8"] },
      { baseUrls: onTls("tools.example") },
    ).resolve("tools.example");
    expect(got.discovery.developer_name).toBe("Example Tool Developer");
    expect(got.revocation?.domain).toBe("tools.example");
    expect(server.requests.slice(-2).map((q) => q.host)).toEqual([
      `tools.example:${server.port}`,
      `tools.example:${server.port}`,
    ]);
  });

  it("over HTTPS, a certificate for another name is refused", async () => {
    const other = new LoopbackServer("127.0.0.1", selfSignedCert(["someone-else.example"]));
    await other.start();
    try {
      other.json(WELL_KNOWN_PATH, wellKnownFixture("python"));
      const e = await refusal(
        resolver(
          { allowCidrs: ["127.0.0.0/8"] },
          { baseUrls: { "tools.example": `https://tools.example:${other.port}` } },
        ).resolve("tools.example"),
      );
      expect(e.code).toBe("discovery_fetch_failed");
    } finally {
      await other.stop();
    }
  });

  it("over plain HTTP (tests' mapped base URL)", async () => {
    plain.json(WELL_KNOWN_PATH, wellKnownFixture("javascript"));
    const got = await resolver(
      { allowCidrs: ["127.0.0.0/8"] },
      { baseUrls: { "tools.example": `http://tools.example:${plain.port}` } },
    ).resolve("tools.example");
    expect(got.discovery.public_key_pem).toBe(wellKnownFixture("javascript").public_key_pem);
  });
});

describe("bounded in size and time", () => {
  const allowed = { allowCidrs: ["127.0.0.0/8"] };

  it("a DNS server that never answers times out within the budget", async () => {
    const t0 = Date.now();
    const e = await refusal(
      resolver(allowed, { timeoutMs: 500, baseUrls: onTls("slow.example") }).resolve(
        "slow.example",
      ),
    );
    expect(e.message).toMatch(/timed out/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("an oversized body is cut off", async () => {
    server.routes.set(WELL_KNOWN_PATH, (_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ...wellKnownFixture("python"), contact: "x".repeat(200_000) }));
    });
    const e = await refusal(
      resolver(allowed, { baseUrls: onTls("tools.example"), maxBytes: 4096 }).resolve(
        "tools.example",
      ),
    );
    expect(e.message).toMatch(/larger than 4096/);
  });

  it("a server that stalls mid-body times out", async () => {
    server.routes.set(WELL_KNOWN_PATH, (_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"schema_version":');
    });
    const t0 = Date.now();
    const e = await refusal(
      resolver(allowed, { baseUrls: onTls("tools.example"), timeoutMs: 400 }).resolve(
        "tools.example",
      ),
    );
    expect(e.message).toMatch(/timed out/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
