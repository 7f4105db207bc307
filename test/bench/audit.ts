// Audit trail benchmark: durable appends/s and append latency against real Redis with 1, 8 and 64
// concurrent appenders, beside the raw Ed25519 sign rate (the ceiling: every event is one
// signature), and a bare Redis write with and without its fsync (the machine's cost of
// durability), measured in the same run; plus the offline verify rate of an export. The signer is
// the one the Node API gives the audit log (functions/node/signing.ts), and the ceiling is that
// signer's own rate.
// Run: npx tsx test/bench/audit.ts
import { pathToFileURL } from "node:url";
import { nodeSigning } from "../../functions/node/signing";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { installNodeSha256 } from "../../platform/node/native-hash";
import { AuditService, verifyExport } from "../../shared/audit";
import type { Signer } from "../../shared/crypto";
import { seedOf, staticKeys, webcryptoVerify } from "../audit/support/crypto";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const SECONDS_PER_LEVEL = 4;

async function signRate(signer: Signer, seconds: number): Promise<number> {
  const msg = new TextEncoder().encode("x".repeat(400));
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await signer.sign(msg);
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, worker));
  return n / ((performance.now() - t0) / 1000);
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** The machine's own cost of one durable write: SETs of an event-sized value, one in flight. */
async function bareWrites(redis: ReturnType<typeof connectRedis>, key: string, n: number) {
  const value = "x".repeat(600);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await redis.set(key, value);
    lat.push(performance.now() - t);
  }
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: n / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function appendRun(service: AuditService, concurrency: number, seconds: number) {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    let i = 0;
    while (performance.now() < end) {
      const t = performance.now();
      await service.append({
        eventType: "tool.invoked",
        agentId: `agent-${w}`,
        details: { i: i++, tool: "search", ok: true },
      });
      lat.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { n: lat.length, rate: lat.length / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

export async function bench(): Promise<void> {
  installNodeSha256(); // as every Node entry does
  const redis = connectRedis();
  const prefix = testPrefix("bench-audit");
  const signing = nodeSigning("webcrypto"); // the default crypto_provider
  const signer = await signing.factory(seedOf(7), "audit-1");
  const keys = staticKeys([{ kid: "audit-1", publicKey: signer.publicKey }]);
  const rows: string[][] = [];
  // The goal is about durable appends: run under `appendfsync always` (infra's setting) whatever
  // the server was left at, and put it back afterwards.
  const fsync = ((await redis.config("GET", "appendfsync")) as string[])[1] ?? "always";
  await redis.config("SET", "appendfsync", "always");
  try {
    const ceiling = await signRate(await signing.factory(seedOf(1), "ceiling"), 3);
    rows.push([
      "raw Ed25519 sign (the Node API's signer, 64 in flight)",
      `${ceiling.toFixed(0)}/s`,
      "",
      "",
      "1.00 (ceiling)",
    ]);
    // Anchors for latency: a bare durable write, and the same without the fsync.
    for (const mode of ["always", "everysec"] as const) {
      await redis.config("SET", "appendfsync", mode);
      await bareWrites(redis, `${prefix}bare`, 300); // warm-up
      const w = await bareWrites(redis, `${prefix}bare`, 3000);
      rows.push([
        `anchor: bare Redis SET (600 B), 1 in flight (AOF ${mode})`,
        `${w.rate.toFixed(0)}/s`,
        `${w.p50.toFixed(2)} ms`,
        `${w.p99.toFixed(2)} ms`,
        "",
      ]);
    }
    await redis.config("SET", "appendfsync", "always");
    let last: AuditService | undefined;
    for (const c of [1, 8, 64]) {
      const log = await RedisAuditLog.open({ redis, keyPrefix: `${prefix}${c}:`, signer });
      const service = new AuditService({
        log,
        signer,
        verify: webcryptoVerify(),
        keys,
        origin: "bench/audit",
      });
      await appendRun(service, c, 0.5); // warm-up
      const r = await appendRun(service, c, SECONDS_PER_LEVEL);
      rows.push([
        `durable append, ${c} concurrent (Redis AOF always)`,
        `${r.rate.toFixed(0)}/s`,
        `${r.p50.toFixed(2)} ms`,
        `${r.p99.toFixed(2)} ms`,
        (r.rate / ceiling).toFixed(2),
      ]);
      if (c === 64) last = service;
      else await log.close();
    }
    // Offline verification of what the 64-appender run wrote.
    const lines: string[] = [];
    for await (const l of last!.export()) lines.push(l);
    const t0 = performance.now();
    const report = await verifyExport(lines, { keys, verify: webcryptoVerify() });
    const secs = (performance.now() - t0) / 1000;
    if (!report.valid)
      throw new Error(`export did not verify: ${JSON.stringify(report.firstInvalid)}`);
    rows.push([
      `offline verify of the export (${report.checked} events)`,
      `${(report.checked / secs).toFixed(0)}/s`,
      "",
      "",
      "",
    ]);
    await last!.log.close();
  } finally {
    await redis.config("SET", "appendfsync", fsync);
    await dropPrefix(redis, prefix);
    redis.disconnect();
    await signing.close();
  }
  const head = ["audit", "rate", "p50", "p99", "÷ sign rate"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  console.log(fmt(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(fmt(r));
  console.log(
    "goals: ≥ 20,000 durable appends/s with p99 ≤ 10 ms; offline verify ≥ 15,000 events/s",
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bench();
}
