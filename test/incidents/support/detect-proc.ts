// One "API process" of the exactly-once test (test/incidents/kill.test.ts): the Redis audit log and
// incident store under INCIDENT_PREFIX, a detection runner and a responder whose Isolation keeps
// its quarantines in Redis (idempotent per target, as the quarantine service is), stepping until
// killed. Prints "step <processed>" after each step that stored something.
import { Redis } from "ioredis";
import { RedisAuditLog } from "../../../functions/node/stores/audit-redis";
import { RedisIncidentStore } from "../../../functions/node/stores/incidents-redis";
import { AuditService } from "../../../shared/audit";
import { configSchema } from "../../../shared/config";
import { uuidV7 } from "../../../shared/crypto";
import { DetectionEngine, DetectionRunner, Responder } from "../../../shared/incidents";
import type { Isolation, QuarantineRecord } from "../../../shared/quarantine/types";
import { seedOf, staticKeys, webcryptoSigner, webcryptoVerify } from "../../audit/support/crypto";

const prefix = process.env.INCIDENT_PREFIX!;
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const signer = await webcryptoSigner(seedOf(7), "audit-1");
const log = await RedisAuditLog.open({
  redis,
  keyPrefix: `${prefix}audit:`,
  // As the API opens it: incident changes are then appended exactly once (runner.ts).
  nonceKey: (keyid, nonce) => `${prefix}nonce:${keyid}:${nonce}`,
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
const store = new RedisIncidentStore(redis, prefix, { macKey: new Uint8Array(32).fill(5) });
const isolation: Isolation = {
  async place(input) {
    const key = `${prefix}quarantine:${JSON.stringify(input.target)}`;
    const fresh: QuarantineRecord = {
      id: uuidV7(),
      target: input.target,
      reason: input.reason,
      incidentId: input.incidentId,
      placedBy: input.by,
      placedAt: new Date().toISOString(),
    };
    await redis.set(key, JSON.stringify(fresh), "NX");
    await redis.incr(`${prefix}quarantine-calls`);
    return JSON.parse((await redis.get(key))!) as QuarantineRecord;
  },
};
const responder = new Responder({
  store,
  evidence: audit,
  signer,
  isolation,
  revoke: async (kid) => {
    await redis.sadd(`${prefix}revoked`, kid);
  },
  policyViolationAction: "block",
  emergencyScope: "jobs",
});
const engine = new DetectionEngine(
  { incidents: configSchema.parse({}).incidents, sandboxEscapeDetection: true },
  uuidV7,
);
const runner: DetectionRunner = new DetectionRunner({
  store,
  audit,
  engine,
  batch: Number(process.env.INCIDENT_BATCH ?? 10),
  onChange: async (s) => {
    if (await responder.respond(s.record.incidentId)) await runner.finish(s.record.incidentId);
  },
});
await runner.sweep();
for (;;) {
  const r = await runner.step();
  if (r.won) console.log(`step ${r.processed}`);
  else await new Promise((res) => setTimeout(res, 20));
}
