// A quarantined agent on the deployment `npm start` brings up (real Redis, a real worker, real
// Docker; docs/incidents.md "Quarantine"): its next request is 403 `quarantined`, its queued job
// ends `killed` without running, its running `sleep 60` is killed on the worker, which signs the
// `killed` result; lifting restores access; a key revoked meanwhile stays revoked.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyJobResult } from "../../cli/verify";
import type { Sigil } from "../../sdk";
import { devAdminClient, loadKeyFile } from "../../sdk/node";
import { createSigner, type Signer } from "../../shared/crypto";
import { signRequest } from "../../shared/httpsig";
import { busyAgent, clientOf, refusal } from "../support/busy-agent";
import { type Stack, startStack } from "../support/stack";
import { registeredKey } from "../support/targets";

let stack: Stack;
let admin: Sigil;
let adminKey: { kid: string; signer: Signer };

beforeAll(async () => {
  // One running job per submitter: the agent's second job stays queued behind its sleep.
  stack = await startStack("qjobs", { SIGIL_LIMITS_RUNNING_JOBS: "1" });
  admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
  const k = await loadKeyFile(join(stack.dataDir, "admin-key.json"));
  adminKey = { kid: k.kid, signer: await createSigner(k.secretKey, k.kid) };
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

async function adminCall(method: string, path: string, body: unknown) {
  const url = `${stack.base}${path}`;
  const text = JSON.stringify(body);
  const headers = new Headers({ "content-type": "application/json" });
  const sig = await signRequest({ method, url, headers, body: text }, adminKey.signer, {
    keyid: adminKey.kid,
  });
  for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
  const r = await fetch(url, { method, headers, body: text });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe("a quarantined agent", () => {
  it("is refused, its queued job cancelled, its running job killed with a signed result; lifting restores it", async () => {
    const { agent, running, queued } = await busyAgent(stack, admin, "qj-agent-1");

    const started = Date.now();
    const placed = await adminCall("POST", "/v1/quarantine", {
      subject: "qj-agent-1",
      reason: "replayed requests",
    });
    expect(placed.status).toBe(201);
    const q = placed.json.quarantine as { id: string };
    expect(await refusal(agent.jobs.list())).toBe("quarantined");

    const killedQueued = await admin.jobs.get(queued);
    expect([killedQueued.status, killedQueued.result]).toEqual(["killed", undefined]);
    const done = await admin.jobs.wait(running, 30_000);
    expect(done.status).toBe("killed");
    expect(Date.now() - started).toBeLessThan(30_000); // by the quarantine, not its timeout
    expect(done.result?.signed.status).toBe("killed");
    expect((await verifyJobResult(admin, running, done)).ok).toBe(true);

    // Both cancels are audited, naming the quarantine.
    const cancels = (await admin.audit.export())
      .split("\n")
      .filter((l) => l.includes('"job.cancelled"') && l.includes(q.id));
    expect(cancels).toHaveLength(2);

    const lifted = await adminCall("DELETE", `/v1/quarantine/${q.id}`, { reason: "resolved" });
    expect(lifted.status).toBe(200);
    expect(await refusal(agent.jobs.list())).toBeNull();
  }, 180_000);

  it("a key revoked while quarantined stays revoked after the lift", async () => {
    const key = await registeredKey(admin, "agent", "qj-agent-2", { trust: 1 });
    const placed = await adminCall("POST", "/v1/quarantine", { kid: key.kid, reason: "stolen" });
    expect(await refusal(clientOf(stack, key).jobs.list())).toBe("quarantined");
    await admin.keys.revoke(key.kid);
    await adminCall("DELETE", `/v1/quarantine/${(placed.json.quarantine as { id: string }).id}`, {
      reason: "done",
    });
    expect(await refusal(clientOf(stack, key).jobs.list())).toBe("key-unknown");
  }, 60_000);
});
