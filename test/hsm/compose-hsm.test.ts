// The Node API composed with key_store_type = "hsm" on a real SoftHSM2 token: the service key and
// agents' held keys (/v1/sign) live in the token; the JWKS publishes the service key; audit
// events, checkpoints (the export's signed checkpoint) and job envelopes signed through the HSM
// verify with the same code as software-signed ones; 64 concurrent appenders leave a valid chain;
// a restart finds the service key in the token again.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { composeNode, type NodeDeps } from "../../functions/node/compose";
import { openPkcs11ProviderFromFile } from "../../platform/node/pkcs11-provider";
import { Sigil } from "../../sdk";
import { resolverFromJwks, verifyExport } from "../../shared/audit";
import { loadConfig } from "../../shared/config";
import { publicJwk, verifyEd25519 } from "../../shared/crypto";
import { toBase64Url, utf8 } from "../../shared/encoding";
import { envelopeChecks, signEnvelope, verifyEnvelope } from "../../shared/jobs";
import { silentLogger } from "../../shared/log";
import { serviceKeyResolver } from "../../worker/jobs/keys";
import { testEnvelope } from "../jobs/support/envelope";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { serveOnLoopback } from "../support/serve";
import { newKey, registeredKey, type TestKey } from "../support/targets";
import { type TestHsm, testHsm } from "./support";

let hsm: TestHsm;
let hsmConfigPath: string;
const dataDir = mkdtempSync(join(tmpdir(), "sigil-hsm-node-"));
const prefix = testPrefix("hsm-node").replace(/:$/, "");
const redis = connectRedis();
let admin: TestKey;
let port: number;

async function start(): Promise<{ deps: NodeDeps; url: string; close(): Promise<void> }> {
  const config = loadConfig({
    env: {
      SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(admin.publicKey, { kid: admin.kid })]),
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_SERVER_PORT: String(port),
      SIGIL_KEY_STORE_TYPE: "hsm",
      SIGIL_HSM_CONFIG_PATH: hsmConfigPath,
    },
  });
  const deps = await composeNode({
    config,
    redis,
    log: silentLogger,
    health: [],
    reconcile: false,
  });
  const server = await serveOnLoopback(createApp(deps).fetch, port);
  return {
    deps,
    url: server.url,
    async close() {
      await server.close();
      await deps.close();
    },
  };
}

beforeAll(async () => {
  hsm = testHsm();
  const pinFile = hsm.token("sigil-node");
  hsmConfigPath = hsm.config({ token_label: "sigil-node", pin_file: pinFile, sessions: 4 });
  admin = await newKey();
  port = await freePort();
});
afterAll(async () => {
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
  hsm.dispose();
});

const tokenKeys = async () => {
  const p = await openPkcs11ProviderFromFile(hsmConfigPath);
  try {
    return await p.listKeys();
  } finally {
    await p.close();
  }
};

describe("Node API with key_store_type = hsm", () => {
  let serviceKid = "";

  it("keeps the service key in the token, publishes it, and signs audit, checkpoints and envelopes with it", async () => {
    const node = await start();
    try {
      const { deps, url } = node;
      serviceKid = deps.serviceSigner.kid;
      expect(await tokenKeys()).toContain(serviceKid);
      // No software private key was written.
      const keyDir = join(dataDir, "keys");
      expect(existsSync(keyDir) ? readdirSync(keyDir) : []).toEqual([]);

      const health = (await (await fetch(`${url}/health`)).json()) as {
        checks: { name: string; ok: boolean; required: boolean; detail?: string }[];
      };
      expect(health.checks.find((c) => c.name === "hsm")).toMatchObject({
        ok: true,
        required: true,
        detail: "pkcs11:sigil-node: logged in, 4 signing sessions",
      });

      const jwks = (await (await fetch(`${url}/.well-known/sigil/keys`)).json()) as {
        keys: { kid: string; x: string; role?: string }[];
      };
      const published = jwks.keys.find((k) => k.kid === serviceKid);
      expect(published?.x).toBe(toBase64Url(deps.serviceSigner.publicKey));

      // 64 appenders at once: the sequencer's batches sign through the session pool.
      await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          deps.audit.append({ eventType: "app.hsm", agentId: `appender-${i}`, details: { i } }),
        ),
      );
      const client = new Sigil({
        baseUrl: url,
        keyId: admin.kid,
        signer: admin.signer,
        retries: 0,
      });
      const verified = await client.audit.verify();
      expect(verified.valid).toBe(true);
      // The offline verifier, given only the JWKS: every event and the signed checkpoint.
      const exported = await client.audit.export();
      const report = await verifyExport([exported], {
        keys: resolverFromJwks(jwks),
        verify: verifyEd25519,
      });
      expect(report).toMatchObject({ valid: true, checkpoint: { verified: true } });
      expect(report.checked).toBeGreaterThanOrEqual(64);

      // A job envelope signed by the HSM-held key, verified the way a worker does (JWKS).
      const now = Date.now();
      const signed = await signEnvelope(
        testEnvelope(
          {
            submitter: { kid: admin.kid, subject: "admin" },
            policyDecisionId: "d-hsm",
            createdAt: new Date(now).toISOString(),
            expiresAt: new Date(now + 60_000).toISOString(),
          },
          ["true"],
          "0190f0f0-0000-7000-8000-000000000024",
        ),
        deps.serviceSigner,
      );
      const verdict = await verifyEnvelope(JSON.parse(JSON.stringify(signed)), {
        ...envelopeChecks(
          deps.config,
          serviceKeyResolver({ staticKeys: jwks.keys }),
          verifyEd25519,
        ),
        now: now + 1000,
      });
      expect(verdict.ok).toBe(true);

      // An agent's held key (/v1/sign) is created in the token too.
      const agent = await registeredKey(client, "agent", "hsm-agent");
      const agentClient = new Sigil({
        baseUrl: url,
        keyId: agent.kid,
        signer: agent.signer,
        retries: 0,
      });
      const held = await agentClient.signatures.sign("pay 10 EUR");
      expect(await tokenKeys()).toContain(held.kid);
      const check = await agentClient.signatures.verify({
        kid: held.kid,
        message: toBase64Url(utf8("pay 10 EUR")),
        signature: held.signature,
      });
      expect(check.valid).toBe(true);
    } finally {
      await node.close();
    }
  });

  it("a restart finds the service key in the token by id and keeps the chain valid", async () => {
    const node = await start();
    try {
      expect(node.deps.serviceSigner.kid).toBe(serviceKid);
      await node.deps.audit.append({ eventType: "app.hsm", agentId: "after-restart", details: {} });
      const client = new Sigil({
        baseUrl: node.url,
        keyId: admin.kid,
        signer: admin.signer,
        retries: 0,
      });
      expect((await client.audit.verify()).valid).toBe(true);
    } finally {
      await node.close();
    }
  });
});
