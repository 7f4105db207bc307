// Two Node API processes over one Redis: a quarantine placed through one is enforced by the other
// at once, by the invalidation announcement, although the other cached "not quarantined" with a
// TTL (`[auth] key_cache_ms`) far longer than the test waits; two processes placing the same
// quarantine at once store one record and audit it once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { composeNode, type NodeDeps } from "../../functions/node/compose";
import { Sigil, SigilError } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicJwk } from "../../shared/crypto";
import { silentLogger } from "../../shared/log";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { serveOnLoopback } from "../support/serve";
import { newKey, registeredKey, type TestKey } from "../support/targets";

const redis = connectRedis();
const prefix = testPrefix("qproc").replace(/:$/, "");
const dataDir = mkdtempSync(join(tmpdir(), "sigil-qproc-"));
let admin: TestKey;
const procs: { deps: NodeDeps; url: string; close: () => Promise<void> }[] = [];

async function startProcess(adminKeys: string) {
  const port = await freePort();
  const config = loadConfig({
    env: {
      SIGIL_ADMIN_KEYS: adminKeys,
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_SERVER_PORT: String(port),
      SIGIL_KEY_PASSPHRASE: "quarantine processes test",
      // Far longer than the test waits: only the announcement can make the other process see it.
      SIGIL_AUTH_KEY_CACHE_MS: "60000",
    },
  });
  const deps = await composeNode({
    config,
    redis,
    log: silentLogger,
    health: [],
    scrypt: { N: 2 ** 14, r: 8, p: 1 },
    reconcile: false,
  });
  const server = await serveOnLoopback(createApp(deps).fetch, port);
  procs.push({
    deps,
    url: server.url,
    close: async () => {
      await server.close();
      await deps.close();
    },
  });
}

const client = (i: number, k: TestKey) =>
  new Sigil({ baseUrl: procs[i]!.url, keyId: k.kid, signer: k.signer, retries: 0 });

beforeAll(async () => {
  admin = await newKey();
  const adminKeys = JSON.stringify([publicJwk(admin.publicKey, { kid: admin.kid })]);
  await startProcess(adminKeys);
  await startProcess(adminKeys);
}, 120_000);

afterAll(async () => {
  for (const p of procs) await p.close();
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

const ping = { action: "ping", context: {} };
async function refusedType(s: Sigil): Promise<string | null> {
  try {
    await s.evaluate(ping);
    return null;
  } catch (e) {
    if (e instanceof SigilError) return e.code;
    throw e;
  }
}

describe("quarantine across two API processes", () => {
  it("placed through one process, enforced by the other at once (not after its cache TTL)", async () => {
    const agent = await registeredKey(client(0, admin), "agent", "qp-agent-1");
    // Process 1 caches "not quarantined" for this key and subject.
    expect(await refusedType(client(1, agent))).toBeNull();
    const placed = await procs[0]!.deps.quarantine!.place({
      target: { kind: "subject", subject: "qp-agent-1" },
      reason: "test",
      by: "incident-response",
    });
    const deadline = Date.now() + 10_000;
    let seen: string | null = null;
    while (Date.now() < deadline) {
      seen = await refusedType(client(1, agent));
      if (seen !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toBe("quarantined");
    // And the lift, the same way.
    await procs[0]!.deps.quarantine!.lift(placed.id, "admin", "done");
    let back = false;
    const until = Date.now() + 10_000;
    while (Date.now() < until && !back) {
      back = (await refusedType(client(1, agent))) === null;
      if (!back) await new Promise((r) => setTimeout(r, 20));
    }
    expect(back).toBe(true);
  });

  it("two processes placing one target at once: one record, one quarantine.placed", async () => {
    const agent = await registeredKey(client(0, admin), "agent", "qp-agent-2");
    const input = {
      target: { kind: "key", kid: agent.kid } as const,
      reason: "replay",
      incidentId: "inc-qp-2",
      by: "incident-response",
    };
    const [a, b] = await Promise.all(procs.map((p) => p.deps.quarantine!.place(input)));
    expect(a).toEqual(b);
    const { treeSize } = await client(0, admin).audit.checkpoint();
    const page = await client(0, admin).audit.list({ from: Math.max(0, treeSize - 30), limit: 30 });
    const placedEvents = page.events.filter(
      (e) =>
        e.eventType === "quarantine.placed" &&
        (e.details as { quarantineId?: string }).quarantineId === a!.id,
    );
    expect(placedEvents).toHaveLength(1);
    expect(await refusedType(client(0, agent))).toBe("quarantined");
    expect(await refusedType(client(1, agent))).toBe("quarantined");
  });
});
