// An agent cannot pick its own isolation tier (docs/governance.md): a job's codeTrustLevel is the
// submitting key's admin-set trust, declared inputs only raise the score, and the signed envelope
// carries the bounded inputs so the worker's own check agrees. On the Node app and through the edge
// (whose jobs go to the Node gateway). No worker consumes here: the tier is decided at submit, and
// the queued envelope is checked as a worker checks it.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisJobsBackend } from "../../functions/node/jobs/redis-backend";
import type { JobSpec, Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicKeyFromJwk, verifyEd25519 } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { envelopeChecks, type SignedEnvelope, verifyEnvelope } from "../../shared/jobs";
import { connectRedis, testPrefix } from "../support/redis";
import { registeredKey, startTarget, type Target, targetNames } from "../support/targets";

const config = loadConfig();

/** Everything declared at its lowest risk, and the caller claiming full code trust. */
const claimsTrust = {
  dataSensitivity: 0,
  codeTrustLevel: 1,
  networkAccess: 0,
  filesystemAccess: 0,
  externalApis: 0,
};

describe.each(targetNames)("job risk is bounded by the key's trust, on %s", (targetName) => {
  const prefix = testPrefix(`risk-${targetName}`).replace(/:$/, "").replace(/:/g, "-");
  const queue = `jobs-${prefix}`;
  let node: Target;
  let edge: Target | undefined;
  let admin: Sigil;
  let redis: Redis;
  let backend: RedisJobsBackend;
  /** The service that signs this target's envelopes: Node's, or the edge's. */
  let serviceKey: Uint8Array;
  let serviceKid: string;
  let untrusted: Sigil;
  let trusted: Sigil;

  beforeAll(async () => {
    node = await startTarget("node", { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: queue });
    let api = node;
    if (targetName === "edge") {
      edge = await startTarget("edge", { SIGIL_GATEWAY_URL: node.url });
      api = edge;
    }
    const jwks = (await (await fetch(`${api.url}/.well-known/sigil/keys`)).json()) as {
      keys: { kid: string; role: string; x: string; status: string }[];
    };
    const service = jwks.keys.find((k) => k.role === "service" && k.status === "active")!;
    serviceKid = service.kid;
    serviceKey = publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: service.x });
    if (edge) {
      // The edge's service key is a gateway key on Node (test/jobs/edge-e2e.test.ts).
      await node.client(node.admin).keys.create({
        role: "gateway",
        subject: "edge",
        publicKey: toBase64Url(serviceKey),
      });
    }
    admin = api.client(api.admin);
    await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");
    untrusted = api.client(await registeredKey(admin, "agent", "untrusted-agent"));
    trusted = api.client(await registeredKey(admin, "agent", "trusted-agent", { trust: 1 }));
    redis = connectRedis();
    backend = new RedisJobsBackend({ redis, prefix, queueName: queue });
  }, 180_000);

  afterAll(async () => {
    await backend?.queue.obliterate({ force: true }).catch(() => undefined);
    await backend?.close();
    redis?.disconnect();
    await edge?.stop();
    await node?.stop();
  });

  const submit = (who: Sigil, risk?: JobSpec["risk"]) =>
    who.jobs.submit({ image: "sigil/busybox:1", command: ["true"], ...(risk ? { risk } : {}) });

  /** The queued envelope, checked exactly as a worker checks it. */
  async function workerVerdict(jobId: string) {
    const job = await backend.queue.getJob(jobId);
    const signed = (job!.data as { envelope: SignedEnvelope }).envelope;
    const verdict = await verifyEnvelope(
      signed,
      envelopeChecks(
        config,
        async (kid) => (kid === serviceKid ? serviceKey : undefined),
        verifyEd25519,
      ),
    );
    if (!verdict.ok) throw new Error(`worker refused the envelope: ${verdict.reason}`);
    return verdict.envelope;
  }

  it("an untrusted key declaring codeTrustLevel 1 lands on gVisor; the envelope carries trust 0", async () => {
    const acc = await submit(untrusted, claimsTrust);
    expect(acc).toMatchObject({ tier: "gvisor", riskScore: 0.3 });
    const env = await workerVerdict(acc.jobId);
    expect(env).toMatchObject({ tier: "gvisor", riskScore: 0.3 });
    expect(env.risk).toEqual({ ...claimsTrust, codeTrustLevel: 0 });
    // Declaring nothing changes nothing.
    expect(await submit(untrusted)).toMatchObject({ tier: "gvisor", riskScore: 0.3 });
  });

  it("a key an admin trusts lands on Docker for low risk; declared sensitivity raises it", async () => {
    const low = await submit(trusted);
    expect(low).toMatchObject({ tier: "docker", riskScore: 0 });
    expect((await workerVerdict(low.jobId)).tier).toBe("docker");
    const sensitive = await submit(trusted, { dataSensitivity: 1 });
    expect(sensitive).toMatchObject({ tier: "gvisor", riskScore: 0.4 });
    expect((await workerVerdict(sensitive.jobId)).risk).toMatchObject({
      dataSensitivity: 1,
      codeTrustLevel: 1,
    });
    // A caller may volunteer less trust than it has (it raises the score), never more.
    expect(await submit(trusted, { codeTrustLevel: 0 })).toMatchObject({
      tier: "gvisor",
      riskScore: 0.3,
    });
  });

  it("accepts the security model's booleans for network, filesystem and external APIs", async () => {
    const flags = await submit(trusted, {
      networkAccess: true,
      filesystemAccess: true,
      externalApis: false,
    });
    expect(flags).toMatchObject({ tier: "docker", riskScore: 0.2 });
    expect((await workerVerdict(flags.jobId)).risk).toMatchObject({
      networkAccess: 1,
      filesystemAccess: 1,
      externalApis: 0,
    });
    // @ts-expect-error: a string where the schema wants a number, as a hostile client sends it
    await expect(submit(trusted, { networkAccess: "yes" })).rejects.toMatchObject({
      status: 400,
      code: "validation",
    });
    await expect(submit(trusted, { dataSensitivity: 2 })).rejects.toMatchObject({ status: 400 });
  });

  it("a policy's data_sensitivity raises the score; a bad one denies", async () => {
    await admin.policies.put(
      "sensitivity",
      "policy sensitivity {\n  require: data_sensitivity = 0.9 for execute(sandbox)\n}",
    );
    try {
      const acc = await submit(trusted);
      expect(acc).toMatchObject({ tier: "gvisor", riskScore: 0.36 });
      expect((await workerVerdict(acc.jobId)).risk?.dataSensitivity).toBe(0.9);
      await admin.policies.put(
        "sensitivity",
        "policy sensitivity {\n  require: data_sensitivity = 7 for execute(sandbox)\n}",
      );
      await expect(submit(trusted)).rejects.toMatchObject({ status: 403, code: "policy-denied" });
    } finally {
      await admin.policies.delete("sensitivity");
    }
  });

  it("POST /v1/risk/assess takes the booleans too (a calculator of the inputs as given)", async () => {
    expect(
      await untrusted.risk.assess({
        dataSensitivity: 0,
        codeTrustLevel: 1,
        networkAccess: true,
        filesystemAccess: false,
        externalApis: true,
      }),
    ).toEqual({ score: 0.2, level: "low", tier: "docker" });
  });
});
