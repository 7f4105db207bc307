// POST /v1/tools/verify as a hostile agent would use it to make Sigil fetch internal addresses,
// on Node (real Redis) and on the edge (real workerd). Every refusal names its reason and is a
// `tool.discovery_refused` security event. Node resolves names through a DNS server the test runs
// on 127.0.0.1; the edge never resolves anything here (the domains are IP literals, refused by
// name). No traffic leaves loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { registeredKey, startTarget, type Target, targetNames } from "../support/targets";
import { LoopbackServer } from "./discovery-servers";
import { staticZone, TestDnsServer } from "./dns-server";
import { signedFixture, wellKnownFixture } from "./helpers";

const py = signedFixture("python");
const verifyReq = (domain: string) => ({ toolId: "calculate_sum", domain, ...py });

type AuditEvent = { eventType: string; details: Record<string, unknown> };
async function refusalsFor(admin: Sigil, domain: string): Promise<AuditEvent[]> {
  const { events } = (await admin.audit.list({ from: 0, limit: 1000 })) as {
    events: AuditEvent[];
  };
  return events.filter(
    (e) =>
      e.eventType === "security.event" &&
      e.details.category === "tool.discovery_refused" &&
      e.details.domain === domain,
  );
}

// Hosts the URL parser reads as an IP address although they look like names: before this fix
// the textual check let them through and discovery fetched https://127.0.0.1/ (loopback only).
const IP_LITERAL_DOMAINS = ["127.0.0.0x1", "127.1.0x0", "0x7f.0x0.0x0.0x1"];

for (const name of targetNames) {
  describe(`hostile SchemaPin discovery (${name})`, () => {
    const dns = new TestDnsServer(
      staticZone({
        "tools.example": ["127.0.0.1"],
        "inside.example": ["10.0.0.5"],
        "imds.example": ["169.254.169.254"],
        "v6loop.example": ["::1"],
        "mapped.example": ["::ffff:10.0.0.5"],
      }),
    );
    const plain = new LoopbackServer("127.0.0.1");
    let t: Target;
    let admin: Sigil;
    let agent: Sigil;

    beforeAll(async () => {
      await dns.start();
      await plain.start();
      plain.json("/.well-known/schemapin.json", wellKnownFixture("python"));
      t =
        name === "node"
          ? await startTarget(
              "node",
              {
                SIGIL_TOFU_DISCOVERY_RESOLVERS: JSON.stringify([dns.address]),
                SIGIL_TOFU_DISCOVERY_ALLOW_CIDRS: '["127.0.0.1/32"]',
              },
              { baseUrls: { "tools.example": `http://tools.example:${plain.port}` } },
            )
          : await startTarget("edge");
      admin = t.client(t.admin);
      agent = t.client(await registeredKey(admin, "agent", "hostile-discovery"));
    }, 90_000);
    afterAll(async () => {
      await t?.stop();
      await Promise.all([dns.stop(), plain.stop()]);
    });

    it.each(IP_LITERAL_DOMAINS)(
      "a domain the URL parser reads as an IP (%s) is refused by name and audited as a security event",
      async (domain) => {
        const before = plain.connections;
        const r = await agent.tools.verify(verifyReq(domain));
        expect(r).toMatchObject({
          result: "unknown_provider",
          trusted: false,
          errorCode: "discovery_fetch_failed",
        });
        expect(r.detail).toMatch(/IP addresses are not allowed/);
        expect(plain.connections).toBe(before);
        const events = await refusalsFor(admin, domain);
        expect(events).toHaveLength(1);
        expect(events[0]!.details).toMatchObject({
          severity: "medium",
          refusal: { kind: "ip-literal" },
        });
      },
    );

    if (name === "node") {
      it.each([
        ["inside.example", "10.0.0.5", "private"],
        ["imds.example", "169.254.169.254", "cloud-metadata"],
        ["v6loop.example", "::1", "loopback"], // the allow-list has 127.0.0.1/32, not ::1
        ["mapped.example", "10.0.0.5", "private"],
      ])(
        "a name resolving to a refused address (%s → %s) is unknown_provider with the reason",
        async (domain, address, kind) => {
          const r = await agent.tools.verify(verifyReq(domain));
          expect(dns.asked(domain)).toBeGreaterThan(0);
          expect(r).toMatchObject({
            result: "unknown_provider",
            errorCode: "discovery_fetch_failed",
          });
          expect(r.detail).toContain(address);
          expect(r.detail).toContain(kind);
          const events = await refusalsFor(admin, domain);
          expect(events).toHaveLength(1);
          expect(events[0]!.details).toMatchObject({ refusal: { address, kind } });
        },
      );

      it("with the operator's allow-list, discovery over the test DNS works end to end", async () => {
        const r = await agent.tools.verify(verifyReq("tools.example"));
        expect(r).toMatchObject({
          result: "first_use",
          signatureVerified: true,
          discoverySource: "well-known",
        });
        expect(plain.requests.at(-1)).toEqual({
          host: `tools.example:${plain.port}`,
          path: "/.well-known/schemapin.json",
        });
      });
    }
  });
}
