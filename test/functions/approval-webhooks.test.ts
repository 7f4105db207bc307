// Approval webhooks on Node and the edge: receivers this test starts on 127.0.0.1 verify each
// delivery's RFC 9421 signature with nothing but the JWKS the service publishes; a receiver that
// fails gets retries; a dead one never slows an approval down.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { publicKeyFromJwk, verifyEd25519 } from "../../shared/crypto";
import { MemoryReplayCache, verifyRequest } from "../../shared/httpsig";
import { freePort } from "../support/edge";
import { registeredKey, startTarget, type Target, targetNames } from "../support/targets";

interface Delivery {
  verified: boolean;
  detail: string;
  tag: boolean;
  headers: Record<string, string>;
  body: { id: string; type: string; approval: { id: string; status: string } };
}

/** A receiver: verifies every delivery against the service's JWKS, answers `status(n)`. */
async function receiver(jwksUrl: () => string, status: (n: number) => number) {
  const deliveries: Delivery[] = [];
  const replay = new MemoryReplayCache();
  let n = 0;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const { address, port } = server.address() as AddressInfo;
    const r = await verifyRequest(
      { method: req.method ?? "POST", url: `http://${address}:${port}${req.url}`, headers, body },
      {
        resolveKey: async (kid) => {
          const { keys } = (await (await fetch(jwksUrl())).json()) as {
            keys: { kid: string; x: string; kty: "OKP"; crv: "Ed25519"; role?: string }[];
          };
          const k = keys.find((x) => x.kid === kid && x.role === "service");
          return k ? { status: "active", publicKey: publicKeyFromJwk(k) } : { status: "unknown" };
        },
        verify: verifyEd25519,
        replayCache: replay,
        allowedAuthorities: [`${address}:${port}`],
      },
    );
    deliveries.push({
      verified: r.ok,
      detail: r.ok ? "" : r.detail,
      tag: /tag="sigil-webhook"/.test(headers.get("signature-input") ?? ""),
      headers: Object.fromEntries(headers),
      body: JSON.parse(body),
    });
    res.statusCode = status(n++);
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/approvals`,
    deliveries,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

const allocate = (extra: Record<string, unknown> = {}) => ({
  action: "allocate",
  resource: "resources",
  tags: ["high_memory_operations"],
  context: { user: { quota: 1 }, ...extra },
});
const POLICY = `policy p {
    allow: allocate(resources) if user.quota >= 1
    require: supervisor_approval for high_memory_operations
}`;

async function until<T>(f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(targetNames)("approval webhooks on %s", (targetName) => {
  let t: Target;
  let good: Awaited<ReturnType<typeof receiver>>;
  let flaky: Awaited<ReturnType<typeof receiver>>;
  let requester: Sigil;
  let boss: Sigil;

  beforeAll(async () => {
    const jwks = () => `${t.url}/.well-known/sigil/keys`;
    good = await receiver(jwks, () => 204);
    // Fails its first two deliveries: the third attempt lands.
    flaky = await receiver(jwks, (n) => (n < 2 ? 503 : 200));
    const dead = `http://127.0.0.1:${await freePort()}/nobody-listens`;
    t = await startTarget(targetName, {
      SIGIL_APPROVALS_WEBHOOKS: JSON.stringify([dead, good.url, flaky.url]),
    });
    const admin = t.client(t.admin);
    requester = t.client(await registeredKey(admin, "agent", "agent-w"));
    boss = t.client(await registeredKey(admin, "agent", "boss-w", { groups: ["supervisor"] }));
    await admin.policies.put("p", POLICY);
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
    await good?.close();
    await flaky?.close();
  });

  it("every step is delivered, signed by the service key; a dead receiver blocks nothing", async () => {
    const started = Date.now();
    const d = await requester.evaluate(allocate());
    const id = d.approvalId!;
    await boss.approvals.decide(id, { decision: "approve", reason: "ok" });
    const ok = await requester.evaluate({ ...allocate(), approvalId: id });
    expect(ok.decision).toBe("allow");
    // The dead receiver (connection refused, retried with backoff) did not hold anything up.
    expect(Date.now() - started).toBeLessThan(5_000);

    const types = ["approval.requested", "approval.approved", "approval.redeemed"];
    const mine = (r: typeof good) =>
      r.deliveries.filter((x) => x.body.approval.id === id && x.verified);
    await until(() => (mine(good).length >= 3 ? true : undefined));
    expect(mine(good).map((x) => x.body.type)).toEqual(types);
    expect(good.deliveries.every((x) => x.verified && x.tag)).toBe(true);
    expect(mine(good)[1]!.body.approval.status).toBe("approved");

    // The flaky receiver got each event too, after retries (so it saw more requests than events).
    await until(() => (new Set(mine(flaky).map((x) => x.body.type)).size === 3 ? true : undefined));
    expect(flaky.deliveries.length).toBeGreaterThan(3);
    expect(flaky.deliveries.every((x) => x.verified)).toBe(true);
    // Retries repeat the event (same id), each signed afresh (new nonce: no replay refusal).
    const first = flaky.deliveries[0]!.body.id;
    expect(flaky.deliveries.filter((x) => x.body.id === first).length).toBeGreaterThan(1);
  });

  it("a tampered delivery does not verify (the receiver's check is real)", async () => {
    const before = good.deliveries.length;
    const d = await requester.evaluate(allocate({ case: "tamper" }));
    await until(() => (good.deliveries.length > before ? true : undefined));
    const last = good.deliveries[good.deliveries.length - 1]!;
    expect(last.body.approval.id).toBe(d.approvalId);
    // The same signature headers over a changed body: the content-digest no longer matches.
    const { host: _h, "content-length": _l, ...signedHeaders } = last.headers;
    const res = await fetch(good.url, {
      method: "POST",
      headers: signedHeaders,
      body: JSON.stringify({ ...last.body, type: "approval.approved" }),
    });
    expect(res.status).toBe(204);
    expect(good.deliveries[good.deliveries.length - 1]!.verified).toBe(false);
  });
});

describe("ApprovalWebhooks queue", () => {
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  it("is bounded per receiver: a stuck receiver's queue drops new events, another's is unaffected", async () => {
    const { createSigner } = await import("../../shared/crypto");
    const { ApprovalWebhooks } = await import("../../functions/approval-webhooks");
    const signer = await createSigner(new Uint8Array(32).fill(1), "svc");
    const seen: string[] = [];
    let release: () => void = () => {};
    const stuck = new Promise<void>((r) => {
      release = r;
    });
    const gaveUp: string[] = [];
    const hooks = new ApprovalWebhooks({
      urls: ["http://127.0.0.1:1/stuck", "http://127.0.0.1:1/ok"],
      signer,
      log,
      attempts: 2,
      queueSize: 2,
      baseDelayMs: 1,
      fetch: async (url, init) => {
        if (String(url).endsWith("/stuck")) {
          await stuck;
          return new Response(null, { status: 500 });
        }
        seen.push(JSON.parse(String(init?.body)).type);
        return new Response(null, { status: 200 });
      },
      onGiveUp: async (url) => {
        gaveUp.push(url);
      },
    });
    // The first event is in flight on /stuck and two more fill its queue; /ok delivers them all.
    expect(hooks.publish({ type: "e1", approval: {} })).toBe(true);
    expect(hooks.publish({ type: "e2", approval: {} })).toBe(true);
    expect(hooks.publish({ type: "e3", approval: {} })).toBe(true);
    await until(() => (seen.length === 3 ? true : undefined));
    // /stuck's queue is full: the fourth is dropped there (false), and still reaches /ok.
    expect(hooks.publish({ type: "e4", approval: {} })).toBe(false);
    await until(() => (seen.length === 4 ? true : undefined));
    expect(seen).toEqual(["e1", "e2", "e3", "e4"]);
    release();
    await hooks.idle();
    // Three events reached /stuck's queue, each failed twice and was given up (and reported).
    expect(gaveUp).toEqual([
      "http://127.0.0.1:1/stuck",
      "http://127.0.0.1:1/stuck",
      "http://127.0.0.1:1/stuck",
    ]);
  });
});
