// POST /v1/tools/verify through the real Node app: SchemaPin discovery against a local server,
// strict TOFU (first use is not trusted until an admin pins), and every outcome audited.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { TestServer } from "../schemapin/helpers";
import { registeredKey, startTarget, type Target } from "../support/targets";
import { vectorPath } from "../support/vectors";

const signed = JSON.parse(
  readFileSync(vectorPath("schemapin", "python", "demo_schema_signed.json"), "utf8"),
);
const wellKnown = JSON.parse(
  readFileSync(vectorPath("schemapin", "python", "demo_well_known.json"), "utf8"),
);
const DOMAIN = "tools.example.com";

describe("tool verification over HTTP (Node)", () => {
  const server = new TestServer();
  let t: Target;
  let agent: Sigil;
  let admin: Sigil;
  beforeAll(async () => {
    await server.start();
    server.json("/py/.well-known/schemapin.json", wellKnown);
    t = await startTarget(
      "node",
      // Discovery connects only to public addresses unless the operator allows more.
      { SIGIL_TOFU_DISCOVERY_ALLOW_CIDRS: '["127.0.0.1/32"]' },
      { allowLocal: true, baseUrls: { [DOMAIN]: server.base("py") } },
    );
    admin = t.client(t.admin);
    agent = t.client(await registeredKey(admin, "agent", "tool-user"));
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await server.stop();
  });

  it("first use is reported, not trusted; after an admin pins the key it is trusted; all audited", async () => {
    const req = {
      toolId: "calc",
      domain: DOMAIN,
      schema: signed.schema,
      signature: signed.signature,
    };
    const first = await agent.tools.verify(req);
    expect(first.result).toBe("first_use");
    await admin.tools.putPin(DOMAIN, { publicKeyPem: wellKnown.public_key_pem, toolId: "calc" });
    expect((await agent.tools.verify(req)).result).toBe("trusted");
    const tampered = {
      ...req,
      schema: { ...signed.schema, description: `${signed.schema.description ?? ""}!` },
    };
    expect((await agent.tools.verify(tampered)).result).toBe("signature_invalid");
    const { events } = await admin.audit.list({ from: 0, limit: 1000 });
    expect(events.filter((e) => e.eventType === "tool.verified").length).toBeGreaterThanOrEqual(3);
    expect(events.some((e) => e.eventType === "tool.pinned")).toBe(true);
  });
});
