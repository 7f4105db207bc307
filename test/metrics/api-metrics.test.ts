// GET /metrics on the Node API (docs/operating.md "Metrics and traces"), composed as `npm run api`
// composes it (composeNode + createApp, real Redis): never anonymous on the public port (401
// unsigned, 403 for an agent key), the Prometheus text format as a real parser reads it, counters
// that move by exactly the requests made, labels that name route templates and never a key id,
// a job id or a raw path; and the unsigned address of `[metrics] listen`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prometheusApiMetrics } from "../../functions/node/metrics";
import { serveMetrics } from "../../platform/node/metrics-server";
import { type Sigil, SigilError } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { toBase64Url } from "../../shared/encoding";
import { exposition, signedGet as get } from "../support/prometheus";
import { newKey, registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

describe("GET /metrics on the public port (Node)", () => {
  let t: Target;
  let admin: Sigil;
  let agent: TestKey;
  let auditor: TestKey;
  let limited: TestKey;

  const scrape = async () => {
    const r = await get(`${t.url}/metrics`, auditor);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return exposition(await r.text());
  };

  beforeAll(async () => {
    t = await startTarget("node");
    admin = t.client(t.admin);
    agent = await registeredKey(admin, "agent", "metrics-agent");
    auditor = await registeredKey(admin, "auditor", "metrics-auditor");
    limited = await newKey();
    await admin.keys.create({
      role: "agent",
      subject: "metrics-limited",
      publicKey: toBase64Url(limited.publicKey),
      limits: { requestsPerSecond: 0.001 },
    });
    await admin.policies.put("metrics", "policy metrics {\n  allow: read(reports)\n}");
  }, 90_000);
  afterAll(async () => t?.stop());

  it("an unsigned scrape is 401 and an agent-signed one 403; admin and auditor may read", async () => {
    const unsigned = await get(`${t.url}/metrics`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { type: string }).type).toMatch(/auth-required$/);
    const asAgent = await get(`${t.url}/metrics`, agent);
    expect(asAgent.status).toBe(403);
    expect(((await asAgent.json()) as { type: string }).type).toMatch(/forbidden$/);
    expect((await get(`${t.url}/metrics`, t.admin)).status).toBe(200);
    expect((await get(`${t.url}/metrics`, auditor)).status).toBe(200);
  });

  it("counters move by exactly the requests made", async () => {
    const before = await scrape();
    const client = t.client(agent);
    // 3 allowed and 2 denied evaluations (default deny for anything else).
    for (let i = 0; i < 3; i++)
      await client.evaluate({ action: "read", resource: "reports", context: {} });
    for (let i = 0; i < 2; i++)
      await client.evaluate({ action: "write", resource: "reports", context: {} });
    // 4 unsigned requests (401 auth-required) and 1 request of an agent outside its role (403).
    for (let i = 0; i < 4; i++) expect((await get(`${t.url}/v1/audit/verify`)).status).toBe(401);
    expect((await get(`${t.url}/v1/audit/verify`, agent)).status).toBe(403);
    // A key over its request quota: its first request spends the burst, the rest are 429.
    const lim = t.client(limited);
    let refused = 0;
    for (let i = 0; i < 4; i++) {
      const e = await lim
        .evaluate({ action: "read", resource: "reports", context: {} })
        .catch((x) => x);
      if (e instanceof SigilError && e.status === 429) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels);
    const evaluate = { route: "/v1/evaluate", method: "POST" };
    expect(delta("sigil_http_requests_total", { ...evaluate, status: "200" })).toBe(
      5 + (4 - refused),
    );
    expect(delta("sigil_http_requests_total", { ...evaluate, status: "429" })).toBe(refused);
    expect(
      after.count("sigil_http_request_duration_seconds", evaluate) -
        before.count("sigil_http_request_duration_seconds", evaluate),
    ).toBe(9);
    const keys = { route: "/v1/audit/verify", method: "GET" };
    expect(delta("sigil_http_requests_total", { ...keys, status: "401" })).toBe(4);
    expect(delta("sigil_http_requests_total", { ...keys, status: "403" })).toBe(1);
    // The scrape before this one (its own response is counted once it has left).
    expect(
      delta("sigil_http_requests_total", { route: "/metrics", method: "GET", status: "200" }),
    ).toBe(1);
    expect(delta("sigil_policy_decisions_total", { outcome: "allow" })).toBe(3 + (4 - refused));
    expect(delta("sigil_policy_decisions_total", { outcome: "deny" })).toBe(2);
    expect(delta("sigil_audit_appends_total", { event_type: "policy.decision" })).toBe(
      3 + (4 - refused),
    );
    expect(delta("sigil_audit_appends_total", { event_type: "policy.violation" })).toBe(2);
    expect(delta("sigil_auth_failures_total", { reason: "auth-required" })).toBe(4);
    expect(delta("sigil_auth_failures_total", { reason: "forbidden" })).toBe(1);
    expect(delta("sigil_rate_limit_refusals_total", { limit: "requests" })).toBe(refused);
    // Every append this process stored went through one of its sequencer's batches; each batch
    // is observed once in both histograms. (At least: a window summary may be mid-batch.)
    const batches = after.count("sigil_audit_batch_size") - before.count("sigil_audit_batch_size");
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(
      after.count("sigil_audit_sequencer_lag_seconds") -
        before.count("sigil_audit_sequencer_lag_seconds"),
    ).toBe(batches);
    expect(
      after.sum("sigil_audit_batch_size") - before.sum("sigil_audit_batch_size"),
    ).toBeGreaterThanOrEqual(
      after.total("sigil_audit_appends_total") - before.total("sigil_audit_appends_total"),
    );
  });

  it("labels name route templates, never a key id or a raw path", async () => {
    const kid = agent.kid;
    await t.client(t.admin).keys.get(kid);
    const junk = `/v1/no-such-route-${crypto.randomUUID()}`;
    expect((await get(`${t.url}${junk}`, t.admin)).status).toBe(404);
    const text = await (await get(`${t.url}/metrics`, auditor)).text();
    const m = exposition(text);
    expect(
      m.value("sigil_http_requests_total", {
        route: "/v1/keys/:kid",
        method: "GET",
        status: "200",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      m.value("sigil_http_requests_total", { route: "unmatched", method: "GET", status: "404" }),
    ).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(kid);
    expect(text).not.toContain(junk);
    for (const v of m.labelValues()) expect(v).not.toMatch(/[A-Za-z0-9_-]{43}/); // no kid anywhere
  });
});

describe("[metrics] listen: the unsigned metrics address", () => {
  it("is off by default and must be host:port", () => {
    expect(loadConfig({ env: {} }).metrics).toEqual({
      enabled: true,
      listen: "",
      worker_listen: "",
    });
    expect(() => loadConfig({ env: { SIGIL_METRICS_LISTEN: "9464" } })).toThrow(/host:port/);
    expect(loadConfig({ env: { SIGIL_METRICS_LISTEN: "127.0.0.1:9464" } }).metrics.listen).toBe(
      "127.0.0.1:9464",
    );
  });

  it("serves the exposition at /metrics without a signature, and nothing else", async () => {
    const m = prometheusApiMetrics();
    m.request("/v1/evaluate", "POST", 200, 0.002);
    const s = await serveMetrics("127.0.0.1:0", m, () => undefined);
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/metrics`);
      expect(r.status).toBe(200);
      const e = exposition(await r.text());
      expect(
        e.value("sigil_http_requests_total", {
          route: "/v1/evaluate",
          method: "POST",
          status: "200",
        }),
      ).toBe(1);
      expect((await fetch(`http://127.0.0.1:${s.port}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${s.port}/metrics`, { method: "POST" })).status).toBe(
        404,
      );
    } finally {
      await s.close();
    }
  });
});

describe("GET /metrics on the edge (workerd)", () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget("edge");
  }, 90_000);
  afterAll(async () => t?.stop());

  it("has no metrics (isolates share no counters), and is never anonymous: 401 unsigned, 404 signed", async () => {
    const unsigned = await get(`${t.url}/metrics`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { type: string }).type).toMatch(/auth-required$/);
    expect((await get(`${t.url}/metrics`, t.admin)).status).toBe(404);
  });
});
