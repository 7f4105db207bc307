// Adapter harnesses for the audit contract suite: each builds a log plus the hooks an attacker
// with write access to the store would have (rewrite a stored record or Merkle node).
import type { Redis } from "ioredis";
import {
  parseStored,
  RedisAuditLog,
  storedValue,
} from "../../../functions/node/stores/audit-redis";
import {
  type AuditLogPort,
  AuditService,
  MemoryAuditLog,
  type NodeRef,
  nodeKey,
  type Signer,
  type StoredRecord,
} from "../../../shared/audit";
import { connectRedis, dropPrefix, testPrefix } from "../../support/redis";
import { seedOf, staticKeys, webcryptoSigner, webcryptoVerify } from "./crypto";

export interface Built {
  log: AuditLogPort;
  tamper(
    index: number,
    fn: (r: StoredRecord | undefined) => StoredRecord | undefined,
  ): Promise<void>;
  tamperNode(ref: NodeRef, hash: Uint8Array): Promise<void>;
}

export interface Harness {
  name: string;
  build(opts: { signer: Signer; chain?: string; timeoutMs?: number }): Promise<Built>;
  cleanup(): Promise<void>;
}

export function memoryHarness(): Harness {
  return {
    name: "memory",
    async build({ signer, chain, timeoutMs }) {
      const log = new MemoryAuditLog({ signer, chain, timeoutMs });
      return {
        log,
        async tamper(i, fn) {
          log.tamper(i, fn);
        },
        async tamperNode(ref, hash) {
          log.tamperNode(ref, hash);
        },
      };
    },
    async cleanup() {},
  };
}

export function redisHarness(name = "contract"): Harness {
  let redis: Redis | undefined;
  const prefix = testPrefix(`audit-${name}`);
  const logs: RedisAuditLog[] = [];
  return {
    name: "redis",
    async build({ signer, chain, timeoutMs }) {
      redis ??= connectRedis();
      const r = redis;
      const log = await RedisAuditLog.open({
        redis: r,
        keyPrefix: `${prefix}${logs.length}:`,
        signer,
        chain,
        timeoutMs,
        leaseMs: 1000,
      });
      logs.push(log);
      return {
        log,
        async tamper(i, fn) {
          const v = await r.hget(log.keys.ev, String(i));
          const stored = v === null ? undefined : parseStored(v);
          const next = fn(stored);
          // The stored checksums stay as they were: tampering with the JSON is what is tested.
          if (next) {
            await r.hset(
              log.keys.ev,
              String(i),
              storedValue({ json: next.json, sums: stored?.sums }),
            );
          } else await r.hdel(log.keys.ev, String(i));
        },
        async tamperNode(ref, hash) {
          await r.hset(log.keys.nodes, nodeKey(ref), Buffer.from(hash));
        },
      };
    },
    async cleanup() {
      for (const l of logs) await l.close();
      if (redis) {
        await dropPrefix(redis, prefix);
        redis.disconnect();
      }
    },
  };
}

export const ORIGIN = "sigil.test/audit";

/** The service over `log`, whose only key is `signer`'s (kid "audit-1"). */
export function serviceOver(log: AuditLogPort, signer: Signer) {
  const keys = staticKeys([{ kid: "audit-1", publicKey: signer.publicKey }]);
  const verify = webcryptoVerify();
  return { service: new AuditService({ log, signer, verify, keys, origin: ORIGIN }), keys, verify };
}

/** A service over a fresh log with one signing key (kid "audit-1"). */
export async function serviceFor(h: Harness, opts: { chain?: string; timeoutMs?: number } = {}) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const built = await h.build({ signer, ...opts });
  return { ...built, ...serviceOver(built.log, signer), signer };
}
