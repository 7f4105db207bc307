// `npm start` (scripts/start.ts: the API and a worker) with key_store_type = "hsm" on a SoftHSM2
// token the test creates: the worker verifies the envelope the HSM-held service key signed and
// runs the job; the service key the JWKS publishes is the one in the token; the chain verifies.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openPkcs11ProviderFromFile } from "../../platform/node/pkcs11-provider";
import { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { runLowRisk } from "../jobs/support/harness";
import { type Stack, startStack } from "../support/stack";
import { type TestHsm, testHsm } from "./support";

let hsm: TestHsm;
let cfg: string;
let stack: Stack;
let pinEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  hsm = testHsm(); // SOFTHSM2_CONF reaches the spawned API through the environment
  const pin = hsm.token("sigil-start");
  cfg = hsm.config({ token_label: "sigil-start", pin_env: "TEST_SIGIL_HSM_PIN" });
  pinEnv = { TEST_SIGIL_HSM_PIN: readFileSync(pin, "utf8").trim() };
  stack = await startStack("start-hsm", {
    SIGIL_KEY_STORE_TYPE: "hsm",
    SIGIL_HSM_CONFIG_PATH: cfg,
    TEST_SIGIL_HSM_PIN: readFileSync(pin, "utf8").trim(),
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  hsm?.dispose();
}, 60_000);

it("runs a job whose envelope the HSM-held service key signed; the chain verifies", async () => {
  const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
  const kp = await generateEd25519KeyPair();
  await admin.keys.create({
    role: "agent",
    subject: "agent-hsm",
    publicKey: toBase64Url(kp.publicKey),
    trust: 1,
  });
  await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");
  const agent = new Sigil({ baseUrl: stack.base, secretKey: kp.secretKey });
  const { job, result } = await runLowRisk(agent, ["echo", "signed in the HSM"], 60_000);
  expect(job.status).toBe("succeeded");
  expect(result.stdout).toBe("signed in the HSM\n");

  const jwks = (await (await fetch(`${stack.base}/.well-known/sigil/keys`)).json()) as {
    keys: { kid: string; role?: string; status?: string }[];
  };
  const service = jwks.keys.filter((k) => k.role === "service");
  const p = await openPkcs11ProviderFromFile(cfg, pinEnv);
  try {
    const held = await p.listKeys();
    expect(service.length).toBeGreaterThan(0);
    for (const k of service) expect(held).toContain(k.kid);
  } finally {
    await p.close();
  }
  expect((await admin.audit.verify()).valid).toBe(true);
}, 90_000);
