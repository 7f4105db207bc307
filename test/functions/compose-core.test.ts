// composeCore (functions/core.ts) is the one composition both runtimes run: the HSM refusal, the
// admin key-id check and the service key are decided there. Here on memory ports, and on Node's
// real composition (Redis, a data directory) for the service-key rule both runtimes now share.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CorePorts, composeCore, SERVICE_SUBJECT } from "../../functions/core";
import { composeNode } from "../../functions/node/compose";
import { MemoryApprovalStore } from "../../shared/approvals";
import { MemoryAuditLog } from "../../shared/audit";
import { loadConfig, type SigilConfig } from "../../shared/config";
import { ed25519Kid, generateEd25519KeyPair, publicJwk } from "../../shared/crypto";
import { MemoryReplayCache } from "../../shared/httpsig";
import { MemoryKeyRegistry, MemorySecretStore, SoftwareKeyProvider } from "../../shared/keys";
import { MemoryRateLimiter } from "../../shared/limits";
import { jsonLogger } from "../../shared/log";
import { MemoryPolicyStore } from "../../shared/policy";
import { MemoryPinStore } from "../../shared/schemapin";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const SCRYPT = { N: 2 ** 14, r: 8, p: 1 };

function memoryPorts(over: Partial<CorePorts> = {}): CorePorts & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: jsonLogger("info", (l) => lines.push(l)),
    health: [],
    keys: new MemoryKeyRegistry(),
    secrets: new MemorySecretStore(),
    secret: "test secret",
    scrypt: SCRYPT,
    replay: new MemoryReplayCache(),
    auditLog: (signer) => new MemoryAuditLog({ signer }),
    policyStore: new MemoryPolicyStore(),
    pins: new MemoryPinStore(),
    discovery: {},
    limiter: new MemoryRateLimiter(),
    approvals: new MemoryApprovalStore(),
    clientAddress: () => undefined,
    ...over,
  };
}

const config = (env: Record<string, string> = {}): SigilConfig => loadConfig({ env });

describe("composeCore", () => {
  it("without an HSM provider (the edge), refuses an HSM configuration before it asks for a single port", async () => {
    const hsm: Record<string, string>[] = [
      { SIGIL_KEY_STORE_TYPE: "hsm", SIGIL_HSM_CONFIG_PATH: "/etc/hsm.json" },
      { SIGIL_HSM_ENABLED: "true", SIGIL_HSM_CONFIG_PATH: "/etc/hsm.conf" },
    ];
    for (const env of hsm) {
      let asked = false;
      await expect(
        composeCore(config(env), () => {
          asked = true;
          return memoryPorts();
        }),
      ).rejects.toThrow(/no PKCS#11 KeyProvider \(the edge cannot load a native PKCS#11 module/);
      expect(asked).toBe(false);
    }
  });

  it("with an HSM configured, opens the runtime's provider before any port and keeps every service-held key there", async () => {
    const env = { SIGIL_KEY_STORE_TYPE: "hsm", SIGIL_HSM_CONFIG_PATH: "/etc/sigil/hsm.json" };
    // A provider that cannot start: no port is asked for, nothing falls back to software keys.
    let asked = false;
    await expect(
      composeCore(
        config(env),
        () => {
          asked = true;
          return memoryPorts();
        },
        async (path) => {
          throw new Error(`${path}: pin_file: the token refused the PIN`);
        },
      ),
    ).rejects.toThrow(/hsm.json: pin_file: the token refused the PIN/);
    expect(asked).toBe(false);

    // One that starts holds the service key and agents' held keys; the software store holds none.
    const hsm = new SoftwareKeyProvider({ secret: "stands in for the token", scrypt: SCRYPT });
    const ports = memoryPorts();
    let openedWith = "";
    const deps = await composeCore(config(env), ports, async (path) => {
      openedWith = path;
      return hsm;
    });
    expect(openedWith).toBe("/etc/sigil/hsm.json");
    expect(await hsm.listKeys()).toEqual([deps.serviceSigner.kid]);
    const held = await deps.keyManager.createKey({ role: "held", subject: "held:agent-1" });
    expect(await hsm.listKeys()).toContain(held.record.kid);
    expect(await ports.secrets.list()).toEqual([]);
  });

  it("refuses an admin key whose kid is not its thumbprint, and registers a right one", async () => {
    const a = await generateEd25519KeyPair();
    const b = await generateEd25519KeyPair();
    const wrong = publicJwk(a.publicKey, { kid: ed25519Kid(b.publicKey) });
    await expect(
      composeCore(config({ SIGIL_ADMIN_KEYS: JSON.stringify([wrong]) }), memoryPorts()),
    ).rejects.toThrow(/not the RFC 7638 thumbprint/);

    const kid = ed25519Kid(a.publicKey);
    const ports = memoryPorts();
    const right = publicJwk(a.publicKey, { kid });
    await composeCore(config({ SIGIL_ADMIN_KEYS: JSON.stringify([right]) }), ports);
    expect(await ports.keys.get(kid)).toMatchObject({ role: "admin" });
  });

  it("with no admin key configured and no local admin, registers none and says so", async () => {
    const ports = memoryPorts();
    const deps = await composeCore(config(), ports);
    expect(deps.adminKeyPath).toBeUndefined();
    expect(await ports.keys.list("admin")).toEqual([]);
    expect(ports.lines.some((l) => l.includes("admin routes refuse every request"))).toBe(true);
  });

  it("isolates composing at once under a lease create exactly one service key", async () => {
    const keys = new MemoryKeyRegistry();
    const secrets = new MemorySecretStore();
    let holderOf: string | undefined;
    const lease = async (holder: string) => {
      holderOf ??= holder;
      return holderOf === holder;
    };
    const all = await Promise.all(
      Array.from({ length: 4 }, () =>
        composeCore(config(), memoryPorts({ keys, secrets, serviceKeyLease: lease })),
      ),
    );
    const services = await keys.list("service");
    expect(services).toHaveLength(1);
    expect(services[0]!.subject).toBe(SERVICE_SUBJECT);
    expect(new Set(all.map((d) => d.serviceSigner.kid))).toEqual(new Set([services[0]!.kid]));
  });
});

describe("Node: the service key rule composeCore applies", () => {
  const redis = connectRedis();
  const dataDir = mkdtempSync(join(tmpdir(), "sigil-compose-core-"));
  const prefix = testPrefix("composecore").replace(/:$/, "");
  afterAll(async () => {
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async () => {
    const lines: string[] = [];
    const deps = await composeNode({
      config: loadConfig({ env: { SIGIL_DATA_DIR: dataDir, SIGIL_REDIS_PREFIX: prefix } }),
      redis,
      log: jsonLogger("info", (l) => lines.push(l)),
      health: [],
      env: { SIGIL_KEY_PASSPHRASE: "compose-core test" },
      scrypt: SCRYPT,
      reconcile: false,
    });
    return { deps, lines };
  };

  it("an expired service key held here is replaced by a new one, with a warning naming it", async () => {
    // The only active service key this data directory holds is expired: the first start's key
    // is revoked, and a replacement is made with a lifetime of 1 ms.
    const first = await start();
    const original = first.deps.serviceSigner.kid;
    const expired = (
      await first.deps.keyManager.createKey({
        role: "service",
        subject: SERVICE_SUBJECT,
        lifetimeMs: 1,
      })
    ).record.kid;
    await first.deps.keyManager.revoke(original, { reason: "test" });
    await first.deps.close();
    await new Promise((r) => setTimeout(r, 5));

    const second = await start();
    try {
      const kid = second.deps.serviceSigner.kid;
      expect(kid).not.toBe(original);
      expect(kid).not.toBe(expired);
      expect(await second.deps.keys.get(kid)).toMatchObject({
        role: "service",
        subject: SERVICE_SUBJECT,
        status: "active",
      });
      const warned = second.lines
        .map((l) => JSON.parse(l) as { level: string; msg: string; registered?: string[] })
        .find((l) => l.level === "warn" && /service key/.test(l.msg));
      expect(warned?.registered).toEqual([expired]);
    } finally {
      await second.deps.close();
    }
  });
});
