// Erasure against someone holding everything else (docs/data-subjects.md "What erasure
// guarantees"): after a subject is erased, its personal data cannot be read back even with every
// value in Redis, the deployment secret, every key derived from it and the service's private keys.
// Before erasure the same search does find the key, so the test can fail.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeNode, type NodeDeps } from "../../functions/node/compose";
import { FileSecretStore } from "../../functions/node/stores/key-files";
import { loadConfig } from "../../shared/config";
import { aes256GcmDecrypt, hkdfSha256 } from "../../shared/crypto";
import { fromBase64Url, fromUtf8, utf8 } from "../../shared/encoding";
import { decryptSecretKey } from "../../shared/keys/at-rest";
import { silentLogger } from "../../shared/log";
import { SEALED_PREFIX } from "../../shared/subjects";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const ALICE = "alice@example.com";
const EMAIL = "alice.private@example.org";
const redis = connectRedis();
const prefix = testPrefix("subjects-raw").replace(/:$/, "");
const dataDir = mkdtempSync(join(tmpdir(), "sigil-subjects-"));
let deps: NodeDeps;

beforeAll(async () => {
  const config = loadConfig({
    env: {
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_AUDIT_PERSONAL_FIELDS: '["email"]',
    },
  });
  deps = await composeNode({
    config,
    redis,
    log: silentLogger,
    health: [],
    scrypt: { N: 2 ** 14, r: 8, p: 1 },
    reconcile: false,
    sweepHeld: false,
    env: {},
  });
}, 60_000);

afterAll(async () => {
  await deps?.close();
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Every value under the prefix, whatever its type. */
async function everything(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    for (const k of keys) {
      const type = await redis.type(k);
      const vals =
        type === "string"
          ? [(await redis.get(k)) ?? ""]
          : type === "hash"
            ? Object.entries(await redis.hgetall(k)).flat()
            : type === "list"
              ? await redis.lrange(k, 0, -1)
              : type === "set"
                ? await redis.smembers(k)
                : type === "zset"
                  ? await redis.zrange(k, "0", "-1")
                  : type === "stream"
                    ? (await redis.xrange(k, "-", "+")).flatMap(([id, f]) => [id, ...f])
                    : [];
      out.set(k, vals);
    }
  } while (cursor !== "0");
  return out;
}

/**
 * Every 32-byte key an attacker with Redis, the data directory and the secret can make: keys
 * derived from the secret, the service's private keys, and every wrapped key in Redis unwrapped
 * under the derived KEK for the sealed value's ref.
 */
async function candidateKeys(ref: string): Promise<Uint8Array[]> {
  const secret = readFileSync(join(dataDir, "master.secret"), "utf8").trim();
  const derive = (purpose: string) => hkdfSha256(utf8(secret), utf8("sigil"), utf8(purpose), 32);
  const kek = derive("subject-kek.v1");
  const keys = [kek, derive("subject-index.v1"), utf8(secret).slice(0, 32)];
  const files = new FileSecretStore(join(dataDir, "keys"));
  for (const kid of await files.list()) {
    keys.push((await decryptSecretKey(await files.get(kid), secret)).secretKey);
  }
  for (const vals of (await everything()).values()) {
    for (const v of vals) {
      if (!/^[A-Za-z0-9_-]{80}$/.test(v)) continue;
      try {
        keys.push(
          await aes256GcmDecrypt(kek, fromBase64Url(v), utf8(`sigil-subject-key.v1\n${ref}`)),
        );
      } catch {}
    }
  }
  return keys;
}

async function opens(sealed: string, field: string): Promise<string[]> {
  const [, ref, ct] = /^sigil:pd:v1:([^:]+):(.+)$/.exec(sealed)!;
  const found: string[] = [];
  for (const k of await candidateKeys(ref!)) {
    try {
      const pt = await aes256GcmDecrypt(
        k,
        fromBase64Url(ct!),
        utf8(`sigil-pd.v1\n${ref}\n${field}`),
      );
      found.push(fromUtf8(pt));
    } catch {}
  }
  return found;
}

describe("erasure against the whole of Redis and the service's keys", () => {
  it("before erasure the data is found; after, not with anything the deployment holds", async () => {
    const vault = deps.subjects!;
    const details = await vault.seal({ subject: ALICE, email: EMAIL, action: "login" });
    const r = await deps.audit.append({ eventType: "app.login", agentId: "agent-r", details });
    const stored = await deps.audit.get(r.index);
    const subject = stored.details.subject as string;
    const email = stored.details.email as string;
    expect(subject.startsWith(SEALED_PREFIX)).toBe(true);

    // Nowhere in Redis in the clear, before or after.
    const clear = async () =>
      [...(await everything()).values()].flat().filter((v) => v.includes("alice"));
    expect(await clear()).toEqual([]);

    // Before: the search finds the key (the test can fail).
    expect(await opens(subject, "subject")).toEqual([JSON.stringify(ALICE)]);
    expect(await opens(email, "email")).toEqual([JSON.stringify(EMAIL)]);

    expect(await vault.erase(ALICE)).toBe("active");

    expect(await opens(subject, "subject")).toEqual([]);
    expect(await opens(email, "email")).toEqual([]);
    expect(await clear()).toEqual([]);
    // The event itself is unchanged and the chain verifies.
    expect(await deps.audit.get(r.index)).toEqual(stored);
    expect((await deps.audit.verify()).valid).toBe(true);
  });
});
