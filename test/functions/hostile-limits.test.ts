// Item 12 of issue 15, unbounded costs, as a hostile client tries them, on Node (Redis) and on the
// edge (workerd, Durable Objects) alike: a flood of junk requests must not cost a signed, fsynced
// audit event each; a key over its quota gets 429 `rate-limited` with Retry-After (audited once
// per window, with the count); a batch counts every decision in it; role and key-record limits
// override the defaults; and the limits hold across API processes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { composeNode } from "../../functions/node/compose";
import { type AuditEvent, type KeyLimits, type Role, type Sigil, SigilError } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicJwk } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { silentLogger } from "../../shared/log";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { serveOnLoopback } from "../support/serve";
import { newKey, startTarget, type Target, type TestKey, targetNames } from "../support/targets";

// Long enough that a 200-request flood falls in one window even on a loaded machine.
const WINDOW_MS = 4000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (e: AuditEvent) => (e.details.count as number | undefined) ?? 1;

/** A request signed with `key` (or unsigned), as raw HTTP: status, problem type, headers. */
async function send(
  base: string,
  method: string,
  path: string,
  opts: { key?: TestKey; body?: unknown } = {},
) {
  const url = `${base}${path}`;
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = body ? { "content-type": "application/json" } : {};
  if (opts.key) {
    const sig = await signRequest({ method, url, headers, body: body ?? null }, opts.key.signer, {
      keyid: opts.key.kid,
    });
    Object.assign(headers, sig);
  }
  const r = await fetch(url, { method, headers, ...(body ? { body } : {}) });
  const text = await r.text();
  const json = text ? (JSON.parse(text) as { type?: string }) : null;
  return { status: r.status, type: json?.type?.split("/").pop(), headers: r.headers, json };
}

describe.each(targetNames)("hostile limits on %s", (targetName) => {
  let t: Target;
  let admin: Sigil;

  /** A fresh key of `role` under `subject`, with `limits` on its record. */
  async function keyWith(role: Role, subject: string, limits?: KeyLimits): Promise<TestKey> {
    const k = await newKey();
    await admin.keys.create({
      role,
      subject,
      publicKey: toBase64Url(k.publicKey),
      ...(limits ? { limits } : {}),
    });
    return k;
  }

  /**
   * The audit events since `before` matching `pred`, once they count `expectedCount` occurrences
   * (the windows open now have closed and their summaries are written), or a while after that.
   */
  async function settled(
    before: number,
    pred: (e: AuditEvent) => boolean,
    expectedCount: number,
  ): Promise<AuditEvent[]> {
    let events: AuditEvent[] = [];
    for (let i = 0; i < (WINDOW_MS + 5000) / 100; i++) {
      events = (await admin.audit.list({ from: before, limit: 1000 })).events.filter(pred);
      if (events.reduce((n, e) => n + count(e), 0) >= expectedCount) break;
      await sleep(100);
    }
    return events;
  }

  beforeAll(async () => {
    t = await startTarget(targetName, {
      SIGIL_LIMITS_AUDIT_WINDOW_MS: String(WINDOW_MS),
      // Role overrides from config: worker keys get half a request per second.
      SIGIL_LIMITS_ROLES: JSON.stringify({ worker: { requests_per_second: 0.5 } }),
    });
    admin = t.client(t.admin);
  }, 120_000);
  afterAll(async () => t?.stop());

  it("a flood of 200 unauthenticated junk requests: all 401, at most a few audit events, counting all 200", async () => {
    const before = (await admin.audit.checkpoint()).treeSize;
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => send(t.url, "POST", "/v1/evaluate", { body: { junk: 1 } })),
    );
    expect(answers.every((a) => a.status === 401 && a.type === "auth-required")).toBe(true);
    const failed = await settled(
      before,
      (e) => e.eventType === "auth.failed" && e.details.code === "auth-required",
      200,
    );
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(3);
    expect(failed.reduce((n, e) => n + count(e), 0)).toBe(200);
    // The summary names the first few requests it counts, not all of them.
    const summary = failed.find((e) => e.details.aggregated === true);
    const ids = summary?.details.requestIds as unknown[] | undefined;
    expect(ids).toBeInstanceOf(Array);
    expect(ids?.length).toBeLessThanOrEqual(10);
    // Nothing else was written for the flood.
    const all = (await admin.audit.list({ from: before, limit: 1000 })).events;
    expect(all.filter((e) => e.eventType !== "auth.failed")).toHaveLength(0);
  }, 60_000);

  it("over its request limit a key gets 429 rate-limited with Retry-After, audited once with the count", async () => {
    // Half a request per second, a burst of 1 (burst_seconds 2).
    const key = await keyWith("agent", "slow-agent", { requestsPerSecond: 0.5 });
    expect(((await admin.keys.get(key.kid)) as { limits?: unknown }).limits).toEqual({
      requestsPerSecond: 0.5,
    });
    const before = (await admin.audit.checkpoint()).treeSize;
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => send(t.url, "GET", "/v1/audit/checkpoint", { key })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(5);
    for (const r of refused) {
      expect(r.type).toBe("rate-limited");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    const exceeded = await settled(
      before,
      (e) => e.eventType === "limit.exceeded" && e.details.kid === key.kid,
      5,
    );
    expect(exceeded.length).toBeLessThanOrEqual(2);
    expect(exceeded.reduce((n, e) => n + count(e), 0)).toBe(5);
    expect(exceeded[0]!.details).toMatchObject({ limit: "requests", subject: "slow-agent" });
    // Another key is not affected.
    const other = await keyWith("agent", "other-agent");
    expect((await send(t.url, "GET", "/v1/audit/checkpoint", { key: other })).status).toBe(200);
  }, 60_000);

  it("the subject's bucket is shared: a second key of the same subject does not double the quota", async () => {
    const k1 = await keyWith("agent", "one-agent", { requestsPerSecond: 0.5 });
    const k2 = await keyWith("agent", "one-agent", { requestsPerSecond: 0.5 });
    expect((await send(t.url, "GET", "/v1/audit/checkpoint", { key: k1 })).status).toBe(200);
    const second = await send(t.url, "GET", "/v1/audit/checkpoint", { key: k2 });
    expect([second.status, second.type]).toEqual([429, "rate-limited"]);
    expect(second.json).toMatchObject({ detail: expect.stringMatching(/subject one-agent/) });
  });

  it("a batch over the evaluation limit is refused whole, and none of it is evaluated or audited", async () => {
    await admin.policies.put("go", "policy go { allow: go }");
    // 5 evaluations per second, a burst of 10.
    const key = await keyWith("agent", "batch-agent", { evaluationsPerSecond: 5 });
    const before = (await admin.audit.checkpoint()).treeSize;
    const req = { action: "go", context: {} };
    const big = await send(t.url, "POST", "/v1/evaluate/batch", {
      key,
      body: { requests: Array.from({ length: 11 }, () => req) },
    });
    expect([big.status, big.type]).toEqual([429, "rate-limited"]);
    expect(big.json).toMatchObject({ detail: expect.stringMatching(/split it/) });
    const fits = await send(t.url, "POST", "/v1/evaluate/batch", {
      key,
      body: { requests: Array.from({ length: 10 }, () => req) },
    });
    expect(fits.status).toBe(200);
    // The batch took the whole burst: a single evaluation now waits.
    const one = await send(t.url, "POST", "/v1/evaluate", { key, body: req });
    expect([one.status, one.type]).toEqual([429, "rate-limited"]);
    const events = (await admin.audit.list({ from: before, limit: 1000 })).events;
    expect(events.filter((e) => e.eventType === "policy.decision")).toHaveLength(10);
  });

  it("audit appends have their own limit", async () => {
    const key = await keyWith("agent", "chatty-agent", { auditAppendsPerSecond: 0.5 });
    const append = () =>
      send(t.url, "POST", "/v1/audit/events", {
        key,
        body: { eventType: "agent.note", details: { n: 1 } },
      });
    expect((await append()).status).toBe(201);
    const again = await append();
    expect([again.status, again.type]).toEqual([429, "rate-limited"]);
  });

  it("a role's limits come from config ([limits.roles.worker])", async () => {
    const worker = await keyWith("worker", "worker-1");
    // A worker may not read the audit trail (403), but the request still counts.
    expect((await send(t.url, "GET", "/v1/audit/checkpoint", { key: worker })).status).toBe(403);
    const second = await send(t.url, "GET", "/v1/audit/checkpoint", { key: worker });
    expect([second.status, second.type]).toEqual([429, "rate-limited"]);
  });

  it("a key's limits must be valid: 400, nothing registered", async () => {
    for (const limits of [
      { requestsPerSecond: -1 },
      { requestsPerSecond: 0 },
      { queuedJobs: 1.5 },
      { unknown: 1 },
    ]) {
      const k = await newKey();
      const e = await admin.keys
        .create({
          role: "agent",
          subject: "bad",
          publicKey: toBase64Url(k.publicKey),
          limits: limits as KeyLimits,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(e).toBeInstanceOf(SigilError);
      expect((e as SigilError).status).toBe(400);
    }
  });
});

describe.runIf(targetNames.includes("node"))("limits across Node API processes", () => {
  const redis = connectRedis();
  const prefix = testPrefix("limits-procs").replace(/:$/, "");
  const dataDir = mkdtempSync(join(tmpdir(), "sigil-limits-"));
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("two processes share a key's buckets: a burst of 1 is one request in all", async () => {
    const adminKey = await newKey();
    // Both processes answer as the authority each is reached at (requests are signed for it).
    const ports = [await freePort(), await freePort()];
    const config = loadConfig({
      env: {
        SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(adminKey.publicKey, { kid: adminKey.kid })]),
        SIGIL_DATA_DIR: dataDir,
        SIGIL_REDIS_PREFIX: prefix,
        SIGIL_AUTH_ALLOWED_AUTHORITIES: JSON.stringify(ports.map((p) => `127.0.0.1:${p}`)),
      },
    });
    const urls: string[] = [];
    for (const port of ports) {
      const conn = connectRedis();
      const deps = await composeNode({
        config,
        redis: conn,
        log: silentLogger,
        health: [],
        scrypt: { N: 2 ** 14, r: 8, p: 1 },
        reconcile: false,
      });
      const server = await serveOnLoopback(createApp(deps).fetch, port);
      urls.push(server.url);
      stops.push(async () => {
        await server.close();
        await deps.close();
        conn.disconnect();
      });
    }
    const key = await newKey();
    const created = await send(urls[0]!, "POST", "/v1/keys", {
      key: adminKey,
      body: {
        role: "agent",
        subject: "two-procs",
        publicKey: toBase64Url(key.publicKey),
        limits: { requestsPerSecond: 0.5 },
      },
    });
    expect(created.status).toBe(201);
    expect((await send(urls[0]!, "GET", "/v1/audit/checkpoint", { key })).status).toBe(200);
    const there = await send(urls[1]!, "GET", "/v1/audit/checkpoint", { key });
    expect([there.status, there.type]).toEqual([429, "rate-limited"]);
  }, 60_000);
});
