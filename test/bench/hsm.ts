// HSM benchmark: Ed25519 signatures/s through the PKCS#11 provider (platform/node/pkcs11-provider.ts)
// on a SoftHSM2 token this run creates, with one session and with the session pool, beside the
// Node API's software signer (functions/node/signing.ts) in the same run; then durable audit
// appends/s (64 concurrent appenders, Redis AOF always) with each signer, the HSM run's export
// verified offline. SoftHSM2 is software behind PKCS#11: the numbers measure the provider's path
// (session pool, libuv threads, the PKCS#11 call), not a hardware module's speed.
// Run: npx tsx test/bench/hsm.ts
import { pathToFileURL } from "node:url";
import { nodeSigning } from "../../functions/node/signing";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { installNodeSha256 } from "../../platform/node/native-hash";
import { Pkcs11KeyProvider, readHsmConfig } from "../../platform/node/pkcs11-provider";
import { AuditService, verifyExport } from "../../shared/audit";
import type { Signer } from "../../shared/crypto";
import { seedOf, staticKeys, webcryptoVerify } from "../audit/support/crypto";
import { testHsm } from "../hsm/support";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const SIGN_SECONDS = 2;
const APPEND_SECONDS = 3;
const POOL = 4;

async function signRate(signer: Signer, seconds: number, inFlight = 64): Promise<number> {
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
  await Promise.all(Array.from({ length: inFlight }, worker));
  return n / ((performance.now() - t0) / 1000);
}

async function appendRate(service: AuditService, concurrency: number, seconds: number) {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async (w: number) => {
    while (performance.now() < end) {
      await service.append({ eventType: "tool.invoked", agentId: `agent-${w}`, details: { n } });
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return n / ((performance.now() - t0) / 1000);
}

export async function bench(): Promise<void> {
  installNodeSha256();
  const hsm = testHsm();
  const pin = hsm.token("sigil-bench");
  const cfg = await readHsmConfig(hsm.config({ token_label: "sigil-bench", pin_file: pin }));
  const one = await Pkcs11KeyProvider.open(cfg, { sessions: 1 });
  const pool = await Pkcs11KeyProvider.open(cfg, { sessions: POOL });
  const signing = nodeSigning("webcrypto"); // the default crypto_provider
  const redis = connectRedis();
  const prefix = testPrefix("bench-hsm");
  const fsync = ((await redis.config("GET", "appendfsync")) as string[])[1] ?? "always";
  const rows: [string, number, number][] = [];
  try {
    const software = await signing.factory(seedOf(24), "software");
    const { kid } = await pool.generateSigningKey();
    const hsmOne = await one.getSigner(kid);
    const hsmPool = await pool.getSigner(kid);

    const soft = await signRate(software, SIGN_SECONDS);
    rows.push(["Ed25519 sign, software signer (the Node API's), 64 in flight", soft, 1]);
    for (const [name, signer] of [
      ["Ed25519 sign, HSM provider, 1 session, 64 in flight", hsmOne],
      [`Ed25519 sign, HSM provider, pool of ${POOL} sessions, 64 in flight`, hsmPool],
    ] as const) {
      await signRate(signer, 0.3); // warm-up
      const r = await signRate(signer, SIGN_SECONDS);
      rows.push([name, r, r / soft]);
    }

    await redis.config("SET", "appendfsync", "always");
    let softAppends = 0;
    for (const [name, signer] of [
      ["durable append, 64 concurrent, software signer", software],
      [`durable append, 64 concurrent, HSM pool of ${POOL}`, hsmPool],
      ["durable append, 64 concurrent, HSM 1 session", hsmOne],
    ] as const) {
      const keys = staticKeys([{ kid: signer.kid, publicKey: signer.publicKey }]);
      const log = await RedisAuditLog.open({
        redis,
        keyPrefix: `${prefix}${rows.length}:`,
        signer,
      });
      const service = new AuditService({
        log,
        signer,
        verify: webcryptoVerify(),
        keys,
        origin: "bench/hsm",
      });
      await appendRate(service, 64, 0.3); // warm-up
      const r = await appendRate(service, 64, APPEND_SECONDS);
      softAppends ||= r;
      rows.push([name, r, r / softAppends]);
      // The chain written through the HSM verifies with the same offline code.
      const lines: string[] = [];
      for await (const l of service.export()) lines.push(l);
      const report = await verifyExport(lines, { keys, verify: webcryptoVerify() });
      if (!report.valid) throw new Error(`${name}: export did not verify`);
      await log.close();
    }
  } finally {
    await redis.config("SET", "appendfsync", fsync);
    await dropPrefix(redis, prefix);
    redis.disconnect();
    await signing.close();
    await one.close();
    await pool.close();
    hsm.dispose();
  }
  const head = ["hsm (SoftHSM2 2.6)", "rate", "÷ software"];
  const cells = rows.map(([n, r, x]) => [
    String(n),
    `${Number(r).toFixed(0)}/s`,
    Number(x).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  console.log(fmt(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const c of cells) console.log(fmt(c));
  console.log(
    `(pkcs11js signs on libuv's thread pool: UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"})`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bench();
  process.exit(0);
}
