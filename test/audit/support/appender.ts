// Child process for the multi-process audit tests: appends AUDIT_COUNT events to one Redis chain
// with AUDIT_CONCURRENCY in flight and prints "ACK <index> <eventId>" after each acknowledgement.
import { RedisAuditLog } from "../../../functions/node/stores/audit-redis";
import { connectRedis } from "../../support/redis";
import { seedOf, webcryptoSigner } from "./crypto";

const prefix = process.env.AUDIT_PREFIX ?? "";
const count = Number(process.env.AUDIT_COUNT ?? "100");
const concurrency = Number(process.env.AUDIT_CONCURRENCY ?? "32");
const name = process.env.AUDIT_NAME ?? "p";

const redis = connectRedis();
const signer = await webcryptoSigner(seedOf(7), "audit-1");
const log = await RedisAuditLog.open({
  redis,
  keyPrefix: prefix,
  signer,
  leaseMs: 1000,
  timeoutMs: 30_000,
});
process.stdout.write(`READY ${name}\n`);

let next = 0;
let failures = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const i = next++;
    try {
      const e = await log.append({ eventType: "job.started", agentId: name, details: { i, name } });
      process.stdout.write(`ACK ${e.index} ${e.eventId}\n`);
    } catch (err) {
      failures++;
      process.stdout.write(
        `ERR ${(err as { code?: string }).code ?? "?"} ${(err as Error).message}\n`,
      );
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
await log.close();
redis.disconnect();
process.stdout.write(`DONE ${name} ${failures}\n`);
