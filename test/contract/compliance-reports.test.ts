// ReportStore contract (docs/compliance.md "Reports"), run against every adapter: the in-memory
// store (tests, the edge isolate) and Redis (Node). A report reads back exactly as stored, an
// unknown id is absent, and a stored report changed in Redis does not come back as a report.
import { describe, expect, it } from "vitest";
import { RedisReportStore } from "../../functions/node/stores/compliance-redis";
import { MemoryAuditLog } from "../../shared/audit";
import {
  type ComplianceReport,
  frameworkRegistry,
  generateReport,
  MemoryReportStore,
  type ReportStore,
} from "../../shared/compliance";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { serviceOver } from "../audit/support/harness";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("compliance-reports");

async function aReport(): Promise<ComplianceReport> {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = new MemoryAuditLog({ signer });
  const { service } = serviceOver(log, signer);
  await service.append({ eventType: "tool.invoked", agentId: "a", details: {} });
  return generateReport({
    audit: service,
    framework: frameworkRegistry().get("gdpr")!,
    period: {
      from: new Date(Date.now() - 60_000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    },
    facts: { retentionDays: 2555, retentionEnforced: true, encryptionAtRest: true },
    signer,
  });
}

const adapters: [string, () => ReportStore][] = [
  ["memory", () => new MemoryReportStore()],
  ["redis", () => new RedisReportStore(redis, prefix.replace(/:$/, ""))],
];

describe.each(adapters)("ReportStore contract: %s", (_name, make) => {
  it("a report reads back exactly; an unknown id is absent", async () => {
    const store = make();
    const r = await aReport();
    await store.put(r);
    expect(await store.get(r.reportId)).toEqual(r);
    expect(await store.get("01890a5d-ac96-774b-bcce-b302099a8057")).toBeUndefined();
  });

  it("what a caller does to a read copy does not change the stored report", async () => {
    const store = make();
    const r = await aReport();
    await store.put(r);
    const copy = (await store.get(r.reportId))!;
    copy.score = 0;
    expect((await store.get(r.reportId))!.score).toBe(r.score);
  });
});

it("redis: a stored value that is not a report is not returned", async () => {
  const store = new RedisReportStore(redis, prefix.replace(/:$/, ""));
  const r = await aReport();
  await store.put(r);
  await redis.set(
    `${prefix.replace(/:$/, "")}:compliance:report:${r.reportId}`,
    JSON.stringify({ x: 1 }),
  );
  expect(await store.get(r.reportId)).toBeUndefined();
});
