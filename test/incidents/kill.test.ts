// Exactly-once detection with real processes (docs/incidents.md "Exactly once"): two detection
// processes share one Redis audit trail and incident store; one is killed with SIGKILL mid-way and
// a third starts in its place. Every replayed key is detected once (one incident, one
// incident.opened event), quarantined and revoked once, and the cursor reaches the end.
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, expect, it } from "vitest";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { RedisIncidentStore } from "../../functions/node/stores/incidents-redis";
import { AuditService } from "../../shared/audit";
import { seedOf, staticKeys, webcryptoSigner, webcryptoVerify } from "../audit/support/crypto";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("incidents-kill");
const procs: ChildProcess[] = [];

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await dropPrefix(redis, prefix);
  redis.disconnect();
});

function start(name: string): { p: ChildProcess; steps: () => number } {
  const p = spawn(process.execPath, ["--import", "tsx", "test/incidents/support/detect-proc.ts"], {
    env: { ...process.env, INCIDENT_PREFIX: prefix },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let steps = 0;
  let err = "";
  p.stdout!.on("data", (d: Buffer) => {
    steps += String(d)
      .split("\n")
      .filter((l) => l.startsWith("step")).length;
  });
  p.stderr!.on("data", (d: Buffer) => {
    err += String(d);
  });
  p.on("exit", (code, sig) => {
    if (sig !== "SIGKILL" && code !== null) console.error(`${name} exited ${code}: ${err}`);
  });
  procs.push(p);
  return { p, steps: () => steps };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("two processes, one killed with SIGKILL mid-way: each event detected once, each mitigation applied once", {
  timeout: 240_000,
}, async () => {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = await RedisAuditLog.open({
    redis,
    keyPrefix: `${prefix}audit:`,
    signer,
    leaseMs: 1000,
  });
  const audit = new AuditService({
    log,
    signer,
    verify: webcryptoVerify(),
    keys: staticKeys([{ kid: "audit-1", publicKey: signer.publicKey }]),
    origin: "sigil.test/audit",
  });
  const replay = (kid: string) => ({
    eventType: "auth.failed",
    agentId: kid,
    details: { code: "replay", detail: "nonce already used", source: `key:${kid}` },
  });
  const kids: string[] = [];
  for (let i = 0; i < 200; i++) {
    if (i % 8 === 5) {
      kids.push(`kid-${i}`);
      await audit.append(replay(`kid-${i}`));
    } else
      await audit.append({ eventType: "tool.invoked", agentId: `agent-${i % 9}`, details: { i } });
  }
  const a = start("A");
  const b = start("B");
  for (let i = 0; i < 600 && a.steps() < 2; i++) await sleep(50);
  expect(a.steps()).toBeGreaterThanOrEqual(2);
  a.p.kill("SIGKILL");
  const c = start("C");
  // More events while B and C run.
  for (let i = 200; i < 260; i++) {
    if (i % 8 === 5) {
      kids.push(`kid-${i}`);
      await audit.append(replay(`kid-${i}`));
    } else
      await audit.append({ eventType: "tool.invoked", agentId: `agent-${i % 9}`, details: { i } });
  }
  const store = new RedisIncidentStore(redis, prefix, { macKey: new Uint8Array(32).fill(5) });
  let incidents = await store.list({ limit: 1000 });
  for (let i = 0; i < 1200; i++) {
    incidents = await store.list({ limit: 1000 });
    const done =
      incidents.length === kids.length && incidents.every((s) => s.record.state === "mitigated");
    if (done) break;
    await sleep(100);
  }
  // Let the survivors run on a little: nothing more may happen.
  await sleep(1000);
  b.p.kill("SIGKILL");
  c.p.kill("SIGKILL");
  incidents = await store.list({ limit: 1000 });
  expect(incidents.map((s) => s.record.keys[0]).sort()).toEqual([...kids].sort());
  expect(incidents.every((s) => s.record.state === "mitigated")).toBe(true);
  const head = await log.head();
  const events = [];
  for (let from: number | null = 0; from !== null; ) {
    const page = await audit.list(from, 1000);
    events.push(...page.events);
    from = page.next;
  }
  const opened = events
    .filter((e) => e.eventType === "incident.opened")
    .map((e) => e.details.incidentId);
  expect(opened).toHaveLength(kids.length);
  expect(new Set(opened).size).toBe(kids.length);
  const mitigated = events.filter((e) => e.eventType === "incident.mitigated");
  expect(mitigated).toHaveLength(kids.length);
  const quarantines = await redis.keys(`${prefix}quarantine:*`);
  expect(quarantines).toHaveLength(kids.length);
  expect((await redis.smembers(`${prefix}revoked`)).sort()).toEqual([...kids].sort());
  // Every event up to the ones detection itself wrote was read.
  expect((await store.detection()).cursor).toBeGreaterThanOrEqual(260);
  expect(head.size).toBeGreaterThanOrEqual(260);
  await log.close();
});
