// Compliance reports over HTTP (docs/http-api.md "Compliance"), on the Node app and the edge app
// alike: an auditor's report is signed and verifies offline against the published keys, reads
// back as JSON and as a self-contained HTML page; wrong roles, unknown frameworks, reversed or
// enormous periods, ill-formed Unicode and oversized bodies are refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolverFromJwks } from "../../shared/audit";
import { verifyReport } from "../../shared/compliance";
import { verifyEd25519 } from "../../shared/crypto";
import { signRequest } from "../../shared/httpsig";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

describe.each(targetNames)("compliance routes on %s", (targetName) => {
  let t: Target;
  let auditor: TestKey;
  let agent: TestKey;

  async function call(
    method: string,
    path: string,
    key: TestKey | undefined,
    body?: string,
    accept?: string,
  ) {
    const url = `${t.url}${path}`;
    const headers = new Headers();
    if (body !== undefined) headers.set("content-type", "application/json");
    if (accept) headers.set("accept", accept);
    if (key) {
      const sig = await signRequest({ method, url, headers, body: body ?? null }, key.signer, {
        keyid: key.kid,
      });
      for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
    }
    const r = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    return { status: r.status, type: r.headers.get("content-type") ?? "", text: await r.text() };
  }
  const period = () => ({
    from: new Date(Date.now() - 3600_000).toISOString(),
    to: new Date(Date.now() + 60_000).toISOString(),
  });

  beforeAll(async () => {
    t = await startTarget(targetName);
    const admin = t.client(t.admin);
    auditor = await registeredKey(admin, "auditor", "auditor-c");
    agent = await registeredKey(admin, "agent", "agent-c");
  }, 120_000);
  afterAll(async () => t?.stop());

  it("an auditor's report is signed, verifies offline and reads back as JSON and HTML", async () => {
    const r = await call(
      "POST",
      "/v1/compliance/reports",
      auditor,
      JSON.stringify({ framework: "sox", ...period() }),
    );
    expect(r.status).toBe(201);
    const report = JSON.parse(r.text);
    expect(report.framework).toBe("sox");
    const jwks = JSON.parse((await call("GET", "/.well-known/sigil/keys", undefined)).text);
    const key = await resolverFromJwks(jwks)(report.kid, report.generatedAt);
    expect(key?.validAt).toBe(true);
    expect(
      await verifyReport(report, { publicKey: key!.publicKey, verify: verifyEd25519 }),
    ).toEqual({ valid: true, errors: [] });
    // The key registrations above are in the period and cited with proofs.
    expect(
      report.controls.find((c: { id: string }) => c.id === "segregation-of-duties").status,
    ).toBe("met");
    const back = await call("GET", `/v1/compliance/reports/${report.reportId}`, auditor);
    expect(back.status).toBe(200);
    expect(JSON.parse(back.text)).toEqual(report);
    const html = await call(
      "GET",
      `/v1/compliance/reports/${report.reportId}`,
      auditor,
      undefined,
      "text/html",
    );
    expect(html.status).toBe(200);
    expect(html.type).toMatch(/^text\/html/);
    expect(html.text).toContain("SOX IT general controls");
    expect(html.text).not.toMatch(/<script|<link|src=/);
    const fw = JSON.parse((await call("GET", "/v1/compliance/frameworks", auditor)).text);
    expect(fw.frameworks.map((f: { id: string }) => f.id)).toEqual(["hipaa", "gdpr", "sox"]);
  });

  it("refuses the wrong role and anonymous callers", async () => {
    const body = JSON.stringify({ framework: "hipaa", ...period() });
    expect((await call("POST", "/v1/compliance/reports", agent, body)).status).toBe(403);
    expect((await call("POST", "/v1/compliance/reports", undefined, body)).status).toBe(401);
    expect((await call("GET", "/v1/compliance/frameworks", agent)).status).toBe(403);
  });

  it("refuses unknown frameworks, bad periods, ill-formed Unicode and oversized bodies", async () => {
    const post = (b: string) => call("POST", "/v1/compliance/reports", auditor, b);
    const p = period();
    const bad = [
      JSON.stringify({ framework: "pci", ...p }),
      JSON.stringify({ framework: "hipaa", from: p.to, to: p.from }),
      JSON.stringify({ framework: "hipaa", from: "1990-01-01T00:00:00.000Z", to: p.to }),
      JSON.stringify({ framework: "hipaa", from: "2026-02-30T00:00:00.000Z", to: p.to }),
      `{"framework":"hip\\ud800aa","from":"${p.from}","to":"${p.to}"}`,
      JSON.stringify({ framework: "hipaa", ...p, extra: 1 }),
      JSON.stringify({ framework: "hipaa" }),
    ];
    for (const b of bad) {
      const r = await post(b);
      expect(r.status, b).toBe(400);
      expect(r.type).toMatch(/problem\+json/);
    }
    expect(
      (await post(JSON.stringify({ framework: "hipaa", ...p, pad: "x".repeat(2_000_000) }))).status,
    ).toBe(413);
    expect((await call("GET", "/v1/compliance/reports/not-an-id", auditor)).status).toBe(400);
    expect(
      (await call("GET", "/v1/compliance/reports/01890a5d-ac96-774b-bcce-b302099a8057", auditor))
        .status,
    ).toBe(404);
  });
});
