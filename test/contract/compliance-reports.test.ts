// ReportStore contract (docs/compliance.md "Reports"), run against every adapter: the in-memory
// store (tests), Redis (Node) and the ReportsObject (the edge, in real workerd). A report reads
// back exactly as stored, an unknown id is absent, and a stored value changed underneath (in
// Redis, in the object's SQLite) does not come back as a report.
import { afterAll, describe, expect, it } from "vitest";
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
import { disposeWorkerd, freshName, remotePort, workerd } from "../edge/support/workerd";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("compliance-reports");
afterAll(async () => {
  await disposeWorkerd();
}, 30_000);

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
  ["durable-object", () => remotePort<ReportStore>("reports", freshName("reports"))],
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

it("durable-object: a stored value that is not a report, or another id's report, is not returned", async () => {
  const name = freshName("reports");
  const store = remotePort<ReportStore>("reports", name);
  const r = await aReport();
  await store.put(r);
  const w = await workerd();
  const raw = (id: string, value: string) =>
    w.call({
      port: "reports-hook",
      name,
      method: "put",
      args: [id, value, Date.now() + 60_000],
    });
  await raw(r.reportId, JSON.stringify({ x: 1 }));
  expect(await store.get(r.reportId)).toBeUndefined();
  const other = "01890a5d-ac96-774b-bcce-b302099a8057";
  await raw(other, JSON.stringify(r));
  expect(await store.get(other)).toBeUndefined();
  // Expired rows are not served.
  await raw(r.reportId, JSON.stringify(r));
  expect(await store.get(r.reportId)).toEqual(r);
  await w.call({
    port: "reports-hook",
    name,
    method: "put",
    args: [r.reportId, JSON.stringify(r), Date.now() - 1],
  });
  expect(await store.get(r.reportId)).toBeUndefined();
}, 60_000);
