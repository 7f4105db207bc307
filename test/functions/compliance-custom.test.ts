// Custom frameworks through the real app (docs/compliance.md "Custom frameworks"), on Node and on
// the edge: a framework given in SIGIL_COMPLIANCE_FRAMEWORKS_JSON is listed and reported on like
// the shipped ones; on the edge a bad one fails composition (503), never a silent fallback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../../shared/httpsig";
import { startEdge } from "../support/edge";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const CUSTOM = JSON.stringify([
  {
    id: "acme",
    name: "ACME internal policy",
    version: "1.2",
    controls: [
      {
        id: "trail",
        reference: "ACME-7",
        title: "The trail verifies",
        check: { kind: "chain-verifies" },
      },
    ],
  },
]);

async function signed(t: Target, key: TestKey, method: string, path: string, body?: string) {
  const url = `${t.url}${path}`;
  const headers = new Headers();
  if (body !== undefined) headers.set("content-type", "application/json");
  const sig = await signRequest({ method, url, headers, body: body ?? null }, key.signer, {
    keyid: key.kid,
  });
  for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
  const r = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe.each(targetNames)("custom frameworks on %s", (name) => {
  let t: Target;
  let auditor: TestKey;
  beforeAll(async () => {
    t = await startTarget(name, { SIGIL_COMPLIANCE_FRAMEWORKS_JSON: CUSTOM });
    auditor = await registeredKey(t.client(t.admin), "auditor", "auditor-custom");
  }, 120_000);
  afterAll(async () => t?.stop());

  it("lists the custom framework and reports on it", async () => {
    const list = await signed(t, auditor, "GET", "/v1/compliance/frameworks");
    expect((list.body.frameworks as { id: string }[]).map((f) => f.id)).toEqual([
      "hipaa",
      "gdpr",
      "sox",
      "acme",
    ]);
    const r = await signed(
      t,
      auditor,
      "POST",
      "/v1/compliance/reports",
      JSON.stringify({
        framework: "acme",
        from: new Date(Date.now() - 3600_000).toISOString(),
        to: new Date(Date.now() + 60_000).toISOString(),
      }),
    );
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ framework: "acme", version: "1.2", score: 100 });
  });
});

it.runIf(targetNames.includes("edge"))(
  "edge: a bad SIGIL_COMPLIANCE_FRAMEWORKS_JSON fails closed (503 on every request)",
  async () => {
    const edge = await startEdge({
      SIGIL_COMPLIANCE_FRAMEWORKS_JSON:
        '[{"id":"bad","name":"B","version":"1.0","controls":[{"id":"c","reference":"r","title":"t","check":{"kind":"vibes"}}]}]',
    });
    try {
      const r = await fetch(`${edge.url}/health`);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { type: string }).type).toMatch(/unavailable$/);
    } finally {
      await edge.stop();
    }
  },
  120_000,
);
