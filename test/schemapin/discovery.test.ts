// Discovery over a real HTTP server bound to 127.0.0.1 (domain → base URL mapping).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HttpDiscoveryResolver,
  normalizeDomain,
  SchemaPinError,
  WELL_KNOWN_PATH,
} from "../../shared/schemapin";
import { TestServer, wellKnownFixture } from "./helpers";

const server = new TestServer();
beforeAll(() => server.start());
afterAll(() => server.stop());

const resolverFor = (prefix: string, extra: object = {}) =>
  new HttpDiscoveryResolver({
    baseUrls: { "tools.example": server.base(prefix) },
    timeoutMs: 1000,
    ...extra,
  });

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return "resolved";
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaPinError);
    return (e as SchemaPinError).code;
  }
};

describe("HttpDiscoveryResolver", () => {
  it("fetches and validates the well-known document", async () => {
    server.json(`/ok${WELL_KNOWN_PATH}`, wellKnownFixture("python"));
    const r = await resolverFor("ok").resolve("TOOLS.example");
    expect(r.domain).toBe("tools.example");
    expect(r.discovery.developer_name).toBe("Example Tool Developer");
    expect(r.revocation).toBeNull();
    expect(r.source).toBe("well-known");
  });

  it("fetches the standalone revocation document and checks its domain", async () => {
    server.json(`/rev${WELL_KNOWN_PATH}`, {
      ...wellKnownFixture("python"),
      revocation_endpoint: "https://tools.example/revocations.json",
    });
    const doc = {
      schemapin_version: "1.2",
      domain: "tools.example",
      updated_at: "2026-01-01T00:00:00Z",
      revoked_keys: [],
    };
    server.json("/rev/revocations.json", doc);
    expect((await resolverFor("rev").resolve("tools.example")).revocation).toEqual(doc);

    server.json("/rev/revocations.json", { ...doc, domain: "other.example" });
    expect(await codeOf(resolverFor("rev").resolve("tools.example"))).toBe("domain_mismatch");

    // Declared but unreachable fails closed (the SDKs treat it as "nothing revoked").
    server.routes.delete("/rev/revocations.json");
    expect(await codeOf(resolverFor("rev").resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
  });

  it("refuses a revocation endpoint outside the provider's domain", async () => {
    server.json(`/revx${WELL_KNOWN_PATH}`, {
      ...wellKnownFixture("python"),
      revocation_endpoint: "https://evil.example/revocations.json",
    });
    expect(await codeOf(resolverFor("revx").resolve("tools.example"))).toBe("discovery_invalid");
  });

  it("follows same-origin redirects and refuses cross-origin ones", async () => {
    server.json("/moved/new.json", wellKnownFixture("javascript"));
    server.routes.set(`/moved${WELL_KNOWN_PATH}`, (_q, res) => {
      res.writeHead(302, { location: "/moved/new.json" }).end();
    });
    expect((await resolverFor("moved").resolve("tools.example")).discovery.public_key_pem).toBe(
      wellKnownFixture("javascript").public_key_pem,
    );

    server.routes.set(`/away${WELL_KNOWN_PATH}`, (_q, res) => {
      res.writeHead(301, { location: `http://localhost:${server.port}/moved/new.json` }).end();
    });
    expect(await codeOf(resolverFor("away").resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
  });

  it("enforces the size limit, with and without content-length", async () => {
    const big = { ...wellKnownFixture("python"), contact: "x".repeat(400) };
    server.json(`/big${WELL_KNOWN_PATH}`, big);
    expect(await codeOf(resolverFor("big", { maxBytes: 300 }).resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
    server.routes.set(`/chunked${WELL_KNOWN_PATH}`, (_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(JSON.stringify(big).slice(0, 200));
      res.end(JSON.stringify(big).slice(200));
    });
    expect(await codeOf(resolverFor("chunked", { maxBytes: 300 }).resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
  });

  it("times out a server that never answers", async () => {
    server.routes.set(`/slow${WELL_KNOWN_PATH}`, () => {
      /* never respond */
    });
    expect(await codeOf(resolverFor("slow", { timeoutMs: 200 }).resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
  });

  it("rejects HTTP errors, non-JSON and malformed documents", async () => {
    expect(await codeOf(resolverFor("missing").resolve("tools.example"))).toBe(
      "discovery_fetch_failed",
    );
    server.routes.set(`/html${WELL_KNOWN_PATH}`, (_q, res) => res.end("<html>"));
    expect(await codeOf(resolverFor("html").resolve("tools.example"))).toBe("discovery_invalid");
    server.json(`/shape${WELL_KNOWN_PATH}`, { developer_name: "x" });
    expect(await codeOf(resolverFor("shape").resolve("tools.example"))).toBe("discovery_invalid");
  });

  it("refuses IPs, localhost and single labels unless allowed for tests", async () => {
    for (const d of ["127.0.0.1", "localhost", "api.localhost", "intranet", "[::1]", "a..b"]) {
      expect(() => normalizeDomain(d)).toThrow(SchemaPinError);
      expect(await codeOf(new HttpDiscoveryResolver().resolve(d))).toBe("discovery_fetch_failed");
    }
    expect(normalizeDomain("localhost", { allowLocal: true })).toBe("localhost");
    expect(normalizeDomain("Tools.Example")).toBe("tools.example");
  });
});
