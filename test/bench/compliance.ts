// Compliance report benchmark: a report over a period of N events (default 1,000,000; set
// BENCH_COMPLIANCE_EVENTS) in an in-memory log, in events scanned per second, beside the offline
// verify rate of the same events' export measured in the same run (the anchor). A report verifies
// the period's chain too, so it cannot beat the anchor; the goal is ≥ 0.5 × it.
// Run: npx tsx test/bench/compliance.ts
import { pathToFileURL } from "node:url";
import { nodeSigning } from "../../functions/node/signing";
import { installNodeSha256 } from "../../platform/node/native-hash";
import { AuditService, MemoryAuditLog, verifyExport } from "../../shared/audit";
import { frameworkRegistry, generateReport } from "../../shared/compliance";
import { seedOf, staticKeys, webcryptoVerify } from "../audit/support/crypto";

const N = Number(process.env.BENCH_COMPLIANCE_EVENTS ?? 1_000_000);

function eventFor(i: number) {
  // A mix that gives every check work: keyed requests, key lifecycle, changes, incidents.
  switch (i % 100) {
    case 0:
      return {
        eventType: "policy.updated",
        agentId: "alice",
        details: { name: `p${i}`, reason: "r", approvalId: `a${i}`, approvedBy: "bob" },
      };
    case 1:
      return {
        eventType: "key.created",
        agentId: "alice",
        details: { kid: `k${i}`, subject: `s${i}`, role: "agent" },
      };
    case 2:
      return {
        eventType: "incident.opened",
        agentId: "system",
        details: { incidentId: `i${i}`, severity: "high", openedAt: new Date().toISOString() },
      };
    case 3:
      return {
        eventType: "incident.mitigated",
        agentId: "system",
        details: { incidentId: `i${i - 1}` },
      };
    default:
      return {
        eventType: "tool.invoked",
        agentId: `agent-${i % 7}`,
        details: { authKid: `k-${i % 7}`, tool: "search", i },
      };
  }
}

export async function bench(): Promise<void> {
  installNodeSha256();
  const signer = await nodeSigning("webcrypto").factory(seedOf(7), "audit-1");
  const keys = staticKeys([{ kid: "audit-1", publicKey: signer.publicKey }]);
  const verify = webcryptoVerify();
  const log = new MemoryAuditLog({ signer, maxQueue: 1_000_000 });
  const audit = new AuditService({ log, signer, verify, keys, origin: "sigil.bench/audit" });
  const from = new Date(Date.now() - 1000).toISOString();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 2000) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + 2000); j++) batch.push(log.append(eventFor(j)));
    await Promise.all(batch);
  }
  console.log(`built ${N} signed events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const to = new Date(Date.now() + 1000).toISOString();

  const lines: string[] = [];
  for await (const l of audit.export()) lines.push(l);
  const v0 = performance.now();
  const offline = await verifyExport(lines, { keys, verify });
  const verifyRate = offline.checked / ((performance.now() - v0) / 1000);
  if (!offline.valid) throw new Error("the export did not verify");
  lines.length = 0;

  for (const id of ["hipaa", "sox"]) {
    const r0 = performance.now();
    const report = await generateReport({
      audit,
      framework: frameworkRegistry().get(id)!,
      period: { from, to },
      facts: { retentionDays: 2555, retentionEnforced: true, encryptionAtRest: true },
      signer,
    });
    const rate = (report.range.to - report.range.from) / ((performance.now() - r0) / 1000);
    console.log(
      `${id} report over ${report.range.to - report.range.from} events: ${rate.toFixed(0)} events/s scanned; offline verify ${verifyRate.toFixed(0)} events/s; ratio ${(rate / verifyRate).toFixed(2)} (goal ≥ 0.5)`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) await bench();
