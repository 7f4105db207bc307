// Incident response end to end on the deployment `npm start` brings up (real Redis, a real worker,
// real Docker; docs/incidents.md), with a second API process over the same Redis, both running
// detection: an agent key replaying a request is quarantined and revoked, its queued job cancelled
// and its running job killed, with an evidence bundle that verifies offline, each of these once;
// an admin resolves and lifts, and the key stays revoked. An audit event tampered in Redis makes a
// critical incident: emergency mode refuses job submissions until an admin's audited override.
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStored, storedValue } from "../../functions/node/stores/audit-redis";
import type { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { resolverFromJwks } from "../../shared/audit";
import { verifyEd25519 } from "../../shared/crypto";
import { fromBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { verifyEvidence } from "../../shared/incidents/evidence";
import { busyAgent, clientOf, refusal } from "../support/busy-agent";
import { freePort } from "../support/edge";
import { connectRedis } from "../support/redis";
import { type Stack, startStack } from "../support/stack";
import { registeredKey } from "../support/targets";
import { trailEvents } from "../support/trail";
import { until } from "../support/until";
import { repoRoot } from "../support/vectors";

const INCIDENTS_ON = {
  SIGIL_INCIDENTS_ENABLED: "true",
  SIGIL_INCIDENTS_POLL_MS: "100",
  SIGIL_EMERGENCY_OVERRIDE_ENABLED: "true",
};

let stack: Stack;
let admin: Sigil;
let second: ChildProcess | undefined;
const redis = connectRedis();

beforeAll(async () => {
  // One running job per submitter: the agent's second job stays queued behind its sleep.
  stack = await startStack("inc-e2e", { ...INCIDENTS_ON, SIGIL_LIMITS_RUNNING_JOBS: "1" });
  admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
  // A second API process over the same Redis and data directory, detecting too.
  const port = await freePort();
  second = spawn(process.execPath, ["--import", "tsx", "functions/node/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...INCIDENTS_ON,
      SIGIL_PORT: String(port),
      SIGIL_DATA_DIR: stack.dataDir,
      SIGIL_REDIS_PREFIX: stack.prefix,
      SIGIL_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await until("the second API", () =>
    fetch(`http://127.0.0.1:${port}/health`).then(
      () => true,
      () => false,
    ),
  );
}, 180_000);

afterAll(async () => {
  if (second && second.exitCode === null) {
    const exited = new Promise((r) => second!.on("exit", r));
    second.kill("SIGTERM");
    await exited;
  }
  await stack?.stop();
  redis.disconnect();
}, 60_000);

const trail = () => trailEvents(admin);

describe("incident response, end to end", () => {
  it("a replayed request: the key is quarantined and revoked, its jobs cancelled and killed, evidence kept, each once; resolving and lifting leave it revoked", async () => {
    const { key, agent, running, queued } = await busyAgent(stack, admin, "inc-e2e-agent");

    // The same signed request twice: the second is the replay.
    const url = `${stack.base}/v1/jobs`;
    const headers = new Headers();
    const sig = await signRequest({ method: "GET", url, headers }, key.signer, { keyid: key.kid });
    for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
    expect((await fetch(url, { headers })).status).toBe(200);
    const replayed = await fetch(url, { headers });
    expect(replayed.status).toBe(401);

    let incidentId = "";
    await until("the incident to be mitigated", async () => {
      const { incidents } = await admin.incidents.list({ severity: "high" });
      const found = incidents.find((i) => i.keys.includes(key.kid));
      incidentId = found?.incidentId ?? "";
      return found?.state === "mitigated";
    });
    const incident = await admin.incidents.get(incidentId);
    expect([incident.detector, incident.severity]).toEqual(["replay", "high"]);

    const { quarantines } = await admin.quarantine.list({ active: "true" });
    const q = quarantines.find((x) => x.incidentId === incidentId);
    expect(q?.target).toEqual({ kind: "key", kid: key.kid });
    expect((await admin.keys.get(key.kid)).status).toBe("revoked");
    expect(await refusal(agent.jobs.list())).toBe("key-unknown");
    expect((await admin.jobs.get(queued)).status).toBe("killed");
    expect((await admin.jobs.wait(running, 30_000)).status).toBe("killed");

    // The evidence bundle verifies offline with the published keys alone, and not when altered.
    const bundle = JSON.stringify(await admin.incidents.evidence(incidentId));
    const jwks = (await (await fetch(`${stack.base}/.well-known/sigil/keys`)).json()) as {
      keys: { kid: string; x: string }[];
    };
    const bundleKid = (JSON.parse(bundle) as { kid: string }).kid;
    const serviceKey = fromBase64Url(jwks.keys.find((k) => k.kid === bundleKid)!.x);
    const offline = { keys: resolverFromJwks(jwks), verify: verifyEd25519, serviceKey };
    expect((await verifyEvidence(bundle, offline)).valid).toBe(true);
    const altered = bundle.replace(`"severity":"high"`, `"severity":"low"`);
    expect(altered).not.toBe(bundle);
    expect((await verifyEvidence(altered, offline)).valid).toBe(false);

    // Two processes detected and responded; every change and mitigation is on the trail once.
    const events = await trail();
    const about = (type: string) =>
      events.filter((e) => e.eventType === type && e.details.incidentId === incidentId);
    expect(about("incident.opened")).toHaveLength(1);
    expect(about("incident.mitigated")).toHaveLength(1);
    expect(about("quarantine.placed")).toHaveLength(1);
    const revoked = events.filter(
      (e) => e.eventType === "key.revoked" && e.details.kid === key.kid,
    );
    expect(revoked).toHaveLength(1);
    const cancels = events.filter(
      (e) => e.eventType === "job.cancelled" && e.details.quarantineId === q!.id,
    );
    expect(cancels.map((e) => e.details.jobId).sort()).toEqual([queued, running].sort());

    // Recovery: resolved by an admin, the quarantine lifted; the revoked key stays revoked.
    expect((await admin.incidents.move(incidentId, "resolve", "key replaced")).state).toBe(
      "resolved",
    );
    expect((await admin.quarantine.lift(q!.id, "incident resolved")).lifted).toBe(true);
    expect(await refusal(agent.jobs.list())).toBe("key-unknown");
    expect((await admin.keys.get(key.kid)).status).toBe("revoked");
  }, 240_000);

  it("an audit event tampered in Redis: a critical incident, emergency mode refuses job submissions until an admin's audited override", async () => {
    const key = await registeredKey(admin, "agent", "inc-e2e-agent-2", { trust: 1 });
    const agent = clientOf(stack, key);
    await agent.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
    const [events] = await redis.keys(`${stack.prefix}:audit:*:events`);
    const stored = parseStored((await redis.hget(events!, "3"))!);
    const json = stored.json.replace(
      /"timestamp":"[^"]+"/,
      `"timestamp":"2000-01-01T00:00:00.000Z"`,
    );
    expect(json).not.toBe(stored.json);
    await redis.hset(events!, "3", storedValue({ json, sums: stored.sums }));
    expect((await admin.audit.verify()).valid).toBe(false);

    await until(
      "emergency mode",
      async () => (await admin.incidents.emergency()).emergency?.active === true,
    );
    const { incidents } = await admin.incidents.list({ severity: "critical" });
    expect(incidents.map((i) => i.detector)).toEqual(["audit-integrity"]);
    const spec = { image: "sigil/busybox:1", command: ["true"] };
    // Each API process reads emergency mode through a 250 ms cache (functions/routes/incidents.ts).
    await until(
      "emergency refusal",
      async () => (await refusal(agent.jobs.submit(spec))) === "emergency-mode",
    );
    // Reads go on (scope `jobs`).
    expect(await refusal(agent.jobs.list())).toBeNull();

    const lifted = await admin.incidents.overrideEmergency("trail restored from the replica");
    expect(lifted.active).toBe(false);
    await until("submissions again", async () => (await refusal(agent.jobs.submit(spec))) === null);
    const override = (await trail()).filter(
      (e) => e.eventType === "incident.updated" && e.details.change === "emergency_override",
    );
    expect(override).toHaveLength(1);
    expect(override[0]!.details).toMatchObject({
      incidentId: incidents[0]!.incidentId,
      reason: "trail restored from the replica",
    });
  }, 180_000);
});
