// The edge app under real workerd (wrangler dev, Durable Objects on SQLite): SDK-signed requests end
// to end, replay refusal, the admin bootstrap rule, and ~200 concurrent audit appends through the
// Worker onto one chain with no fork, gap or duplicate.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Ed25519Jwk, Sigil, SigilError, signerFromSecretKey } from "../../sdk";
import { ed25519Kid, generateEd25519KeyPair, publicJwk } from "../../shared/crypto";
import { signRequest } from "../../shared/httpsig";
import { type EdgeInstance, startEdge } from "../support/edge";

async function newIdentity() {
  const kp = await generateEd25519KeyPair();
  const kid = ed25519Kid(kp.publicKey);
  // The JWK publicJwk builds, typed as the SDK's Ed25519 input (its curve is always Ed25519 here).
  const jwk: Ed25519Jwk = { ...publicJwk(kp.publicKey, { kid }), kty: "OKP", crv: "Ed25519" };
  return { ...kp, kid, jwk };
}

async function failure(p: Promise<unknown>): Promise<SigilError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SigilError);
  return e as SigilError;
}

describe("edge app with SIGIL_ADMIN_KEYS", () => {
  let edge: EdgeInstance;
  let admin: Sigil;
  let agent: Sigil;
  let agentId: Awaited<ReturnType<typeof newIdentity>>;

  beforeAll(async () => {
    const adminId = await newIdentity();
    edge = await startEdge({ SIGIL_ADMIN_KEYS: JSON.stringify([adminId.jwk]) });
    admin = new Sigil({
      baseUrl: edge.url,
      secretKey: adminId.secretKey,
      keyId: adminId.kid,
      retries: 0,
    });
    agentId = await newIdentity();
    const created = await admin.keys.create({
      role: "agent",
      subject: "agent-edge",
      publicKey: agentId.jwk,
    });
    expect(created.kid).toBe(agentId.kid);
    agent = new Sigil({
      baseUrl: edge.url,
      secretKey: agentId.secretKey,
      keyId: agentId.kid,
      retries: 0,
    });
  });
  afterAll(async () => edge?.stop());

  it("reports the Durable Objects in /health and publishes the service key", async () => {
    const h = await admin.health();
    expect(h.status).toBe("ok");
    expect(h.checks).toContainEqual(expect.objectContaining({ name: "durable-objects", ok: true }));
    const jwks = await admin.wellKnownKeys();
    expect(JSON.stringify(jwks)).toContain('"service"');
  });

  it("serves policies and evaluation from the policy object", async () => {
    const put = await admin.policies.put("edge-doc", "policy p { allow: go }");
    expect(put).toMatchObject({ name: "edge-doc", version: 1 });
    expect((await agent.evaluate({ action: "go", context: {} })).decision).toBe("allow");
    expect((await agent.evaluate({ action: "stop", context: {} })).decision).toBe("deny");
    // An agent cannot manage policies.
    expect((await failure(agent.policies.put("edge-doc", "policy p { deny: go }"))).code).toBe(
      "forbidden",
    );
  });

  it("refuses a replayed signed request", async () => {
    const url = `${edge.url}/v1/audit/events`;
    const body = JSON.stringify({ eventType: "tool.invoked", details: { replay: true } });
    const headers = { "content-type": "application/json" };
    const signer = await signerFromSecretKey(agentId.secretKey, agentId.kid);
    const sig = await signRequest({ method: "POST", url, headers, body }, signer, {
      keyid: agentId.kid,
    });
    const send = () => fetch(url, { method: "POST", headers: { ...headers, ...sig }, body });
    expect((await send()).status).toBe(201);
    const again = await send();
    expect(again.status).toBe(401);
    expect(((await again.json()) as { type: string }).type).toMatch(/\/replay$/);
  });

  it("unknown keys and bad signatures are refused (and audited)", async () => {
    const stranger = await newIdentity();
    const s = new Sigil({
      baseUrl: edge.url,
      secretKey: stranger.secretKey,
      keyId: stranger.kid,
      retries: 0,
    });
    expect((await failure(s.evaluate({ action: "go", context: {} }))).code).toBe("key-unknown");
    const events = await admin.audit.list({ from: 0, limit: 1000 });
    expect(JSON.stringify(events)).toContain("auth.failed");
  });

  it("appends ~200 concurrent events through the Worker onto one verifiable chain", async () => {
    const before = (await admin.audit.verify({})) as { checked: number };
    const N = 200;
    const acks = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        agent.audit.append({ eventType: "tool.invoked", details: { i } }),
      ),
    );
    const idx = acks.map((a) => a.index).sort((a, b) => a - b);
    // One order: N distinct, consecutive indexes after what was there before.
    expect(new Set(idx).size).toBe(N);
    expect(idx[N - 1]! - idx[0]!).toBe(N - 1);
    expect(new Set(acks.map((a) => a.eventId)).size).toBe(N);
    const report = (await admin.audit.verify({})) as { valid: boolean; checked: number };
    expect(report.valid).toBe(true);
    expect(report.checked).toBeGreaterThanOrEqual(before.checked + N);
    // Each acknowledged event is stored as acknowledged, linked to its predecessor.
    const sample = acks.slice(0, 10);
    for (const a of sample) {
      const e = await admin.audit.get(a.index);
      expect(e.eventId).toBe(a.eventId);
      expect(e.eventHash).toBe(a.eventHash);
      if (a.index > 0) expect(e.previousHash).toBe((await admin.audit.get(a.index - 1)).eventHash);
    }
    const cp = await admin.audit.checkpoint();
    expect(cp.treeSize).toBeGreaterThanOrEqual(idx[N - 1]! + 1);
  });

  it("has no job routes without SIGIL_GATEWAY_URL", async () => {
    expect((await failure(agent.jobs.get("00000000-0000-7000-8000-000000000000"))).status).toBe(
      404,
    );
  });
});

describe("edge app without SIGIL_ADMIN_KEYS", () => {
  let edge: EdgeInstance;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => edge?.stop());

  it("invents no admin key: every admin request is refused", async () => {
    const r = await fetch(`${edge.url}/health`);
    expect(r.status).toBe(200);
    const self = await newIdentity();
    const s = new Sigil({
      baseUrl: edge.url,
      secretKey: self.secretKey,
      keyId: self.kid,
      retries: 0,
    });
    const e = await failure(s.keys.create({ role: "admin", subject: "me", publicKey: self.jwk }));
    expect(e.status).toBe(401);
    expect(e.code).toBe("key-unknown");
  });
});
