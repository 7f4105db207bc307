// Sandbox egress admission (docs/sandbox.md, "Egress"): which `network.allow` rules the
// configuration admits, that the policy sees them as `job.network`, that the signed envelope
// carries exactly the admitted rules to the worker, and the proxy's per-address verdict.
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import { configSchema } from "../../shared/config/schema";
import {
  createSigner,
  generateEd25519KeyPair,
  type Signer,
  verifyEd25519,
} from "../../shared/crypto";
import {
  type JobPolicyRequest,
  jobRequestSchema,
  type SignedEnvelope,
  type SubmitJobPorts,
  submitJob,
  verifyEnvelope,
} from "../../shared/jobs";
import {
  checkDestination,
  egressSettings,
  matchRule,
  nameAllowed,
  parseException,
  ruleRefusal,
} from "../../shared/jobs/egress";

const config = loadConfig();
const T0 = Date.parse("2026-01-01T00:00:00Z");
const egress = egressSettings(["10.0.0.0/8:6333", "127.0.0.1/32:18080"], ["203.0.113.0/24"]);
const settings = {
  defaultTier: "gvisor" as const,
  thresholds: { medium: 0.3, high: 0.7 },
  envelopeTtlMs: 3600_000,
  egress,
};
const request = (allow: unknown[]) =>
  jobRequestSchema(config.sandbox).parse({
    image: "sigil/python:1",
    code: "print(1)",
    language: "python",
    network: { allow },
  });

let service: Signer;
beforeAll(async () => {
  service = await createSigner((await generateEd25519KeyPair()).secretKey);
});

function ports(over: Partial<SubmitJobPorts> = {}) {
  const asked: JobPolicyRequest[] = [];
  const queued: SignedEnvelope[] = [];
  const p: SubmitJobPorts = {
    settings,
    now: () => T0,
    admit: async () => {},
    evaluate: async (req) => {
      asked.push(req);
      return { decision: "allow", enforced: true, decisionId: "d-1" };
    },
    signer: service,
    audit: async () => {},
    enqueue: async (signed) => {
      queued.push(signed);
    },
    ...over,
  };
  return { p, asked, queued };
}
const caller = { keyid: "k", role: "agent", subject: "alice", groups: [], trust: 1 };

describe("network.allow validation", () => {
  it("refuses malformed domains and CIDRs at the schema", () => {
    const schema = jobRequestSchema(config.sandbox);
    for (const rule of [
      { domain: "API.test", ports: [443] },
      { domain: "*", ports: [443] },
      { domain: "a.*.test", ports: [443] },
      { domain: "127.0.0.1", ports: [443] },
      { domain: "localhost", ports: [443] },
      { domain: "a\u{d800}.test", ports: [443] },
      { cidr: "10.0.0.1/8", ports: [6333] },
      { cidr: "10.0.0.0/33", ports: [6333] },
      { domain: "api.test", cidr: "10.0.0.0/8", ports: [443] },
    ]) {
      const r = schema.safeParse({
        image: "sigil/busybox:1",
        command: ["true"],
        network: { allow: [rule] },
      });
      expect(r.success, JSON.stringify(rule)).toBe(false);
    }
  });
});

describe("configuration admits rules", () => {
  it("admits public names and ranges, and private ranges only inside an exception's ports", () => {
    expect(ruleRefusal({ domain: "api.test", ports: [443], protocol: "tcp" }, egress)).toBeNull();
    expect(ruleRefusal({ domain: "*.api.test", ports: [443], protocol: "tcp" }, egress)).toBeNull();
    expect(ruleRefusal({ cidr: "8.8.8.0/24", ports: [53], protocol: "tcp" }, egress)).toBeNull();
    expect(ruleRefusal({ cidr: "10.1.0.0/16", ports: [6333], protocol: "tcp" }, egress)).toBeNull();
    expect(
      ruleRefusal({ cidr: "10.1.0.0/16", ports: [6333, 22], protocol: "tcp" }, egress),
    ).toMatch(/non-public/);
    expect(ruleRefusal({ cidr: "8.0.0.0/5", ports: [80], protocol: "tcp" }, egress)).toMatch(
      /non-public/,
    );
    expect(
      ruleRefusal({ cidr: "169.254.169.254/32", ports: [80], protocol: "tcp" }, egress),
    ).toMatch(/non-public/);
    expect(ruleRefusal({ cidr: "203.0.113.0/25", ports: [80], protocol: "tcp" }, egress)).toMatch(
      /operator denies/,
    );
    expect(ruleRefusal({ domain: "api.test", ports: [53], protocol: "udp" }, egress)).toMatch(
      /only tcp/,
    );
  });

  it("parses exceptions, IPv6 included, and refuses garbage in the config", () => {
    expect(parseException("10.0.0.0/8:6333")?.ports).toEqual([6333]);
    expect(parseException("fd00::/8:443,8443")?.ports).toEqual([443, 8443]);
    expect(parseException("10.0.0.0/8")?.ports).toBeNull();
    expect(parseException("10.0.0.0:6333")).toBeNull();
    expect(parseException("10.0.0.0/8:99999")).toBeNull();
    expect(configSchema.safeParse({ network: { allow_cidrs: ["10.0.0.1/8:1"] } }).success).toBe(
      false,
    );
    // Egress on needs an upstream resolver: no silent fallback to the host's.
    expect(configSchema.safeParse({ network: { egress: true } }).success).toBe(false);
    expect(configSchema.parse({}).network.egress).toBe(false);
  });
});

describe("submitJob with egress", () => {
  it("refuses network when egress is off, and a rule the configuration refuses, before policy", async () => {
    const off = ports({ settings: { ...settings, egress: undefined } });
    const out = await submitJob(
      {
        request: request([{ domain: "api.test", ports: [443] }]),
        caller,
        jobId: "j1",
        quota: { queuedJobs: 1, runningJobs: 1 },
      },
      off.p,
    );
    expect(out).toEqual({ outcome: "network-unavailable" });
    const on = ports();
    const refused = await submitJob(
      {
        request: request([
          { domain: "api.test", ports: [443] },
          { cidr: "127.0.0.0/8", ports: [6379] },
        ]),
        caller,
        jobId: "j2",
        quota: { queuedJobs: 1, runningJobs: 1 },
      },
      on.p,
    );
    expect(refused).toMatchObject({ outcome: "network-refused", index: 1 });
    expect(on.asked).toEqual([]);
    expect(on.queued).toEqual([]);
  });

  it("shows the rules to the policy as job.network, counts networkAccess, signs them for the worker", async () => {
    const w = ports();
    const rules = [
      { domain: "api.test", ports: [443] },
      { cidr: "10.0.0.0/8", ports: [6333] },
    ];
    const out = await submitJob(
      { request: request(rules), caller, jobId: "j3", quota: { queuedJobs: 1, runningJobs: 1 } },
      w.p,
    );
    expect(out.outcome).toBe("queued");
    const ctx = w.asked[0]!.context as { network: unknown };
    expect(ctx.network).toEqual([
      { domain: "api.test", ports: [443], protocol: "tcp" },
      { cidr: "10.0.0.0/8", ports: [6333], protocol: "tcp" },
    ]);
    const signed = w.queued[0]!;
    expect(signed.envelope.risk?.networkAccess).toBe(1);
    const verdict = await verifyEnvelope(signed, {
      serviceKey: async (kid) => (kid === service.kid ? service.publicKey : undefined),
      verify: verifyEd25519,
      sandbox: config.sandbox,
      defaultTier: settings.defaultTier,
      thresholds: settings.thresholds,
      now: T0 + 1000,
    });
    expect(verdict.ok).toBe(true);
    if (verdict.ok) expect(verdict.envelope.spec.network.allow).toEqual(ctx.network);
  });

  it("a job without network still shows network false", async () => {
    const w = ports();
    await submitJob(
      { request: request([]), caller, jobId: "j4", quota: { queuedJobs: 1, runningJobs: 1 } },
      w.p,
    );
    expect((w.asked[0]!.context as { network: unknown }).network).toBe(false);
  });
});

describe("the proxy's verdict per address", () => {
  const host = ["192.0.2.10", "172.17.0.1"];
  it("refuses loopback, link-local, metadata, host and denied addresses; admits excepted ports", () => {
    expect(checkDestination("8.8.8.8", 443, egress, host).ok).toBe(true);
    expect(checkDestination("127.0.0.1", 18080, egress, host).ok).toBe(true);
    expect(checkDestination("127.0.0.1", 6379, egress, host).ok).toBe(false);
    expect(checkDestination("::ffff:127.0.0.1", 6379, egress, host).ok).toBe(false);
    expect(checkDestination("169.254.169.254", 80, egress, host)).toMatchObject({
      ok: false,
      reason: /metadata/,
    });
    expect(checkDestination("169.254.1.1", 80, egress, host).ok).toBe(false);
    expect(checkDestination("172.17.0.1", 80, egress, host)).toMatchObject({
      ok: false,
      reason: /this host/,
    });
    expect(checkDestination("203.0.113.7", 80, egress, host)).toMatchObject({
      ok: false,
      reason: /denies/,
    });
    expect(checkDestination("10.2.3.4", 6333, egress, host).ok).toBe(true);
    expect(checkDestination("10.2.3.4", 6334, egress, host).ok).toBe(false);
    expect(checkDestination("0.0.0.0", 80, egress, host).ok).toBe(false);
  });

  it("matches names exactly or by suffix, IP literals only by cidr rules", () => {
    const rules = [
      { domain: "api.test", ports: [443], protocol: "tcp" as const },
      { domain: "*.cdn.test", ports: [443], protocol: "tcp" as const },
      { cidr: "10.0.0.0/8", ports: [6333], protocol: "tcp" as const },
    ];
    expect(matchRule(rules, "api.test", 443)).toBeDefined();
    expect(matchRule(rules, "api.test", 80)).toBeUndefined();
    expect(matchRule(rules, "x.api.test", 443)).toBeUndefined();
    expect(matchRule(rules, "a.cdn.test", 443)).toBeDefined();
    expect(matchRule(rules, "cdn.test", 443)).toBeUndefined();
    expect(matchRule(rules, "evilcdn.test", 443)).toBeUndefined();
    expect(matchRule(rules, "10.9.9.9", 6333)).toBeDefined();
    expect(matchRule(rules, "11.0.0.1", 6333)).toBeUndefined();
    expect(nameAllowed(rules, "api.test")).toBe(true);
    expect(nameAllowed(rules, "other.test")).toBe(false);
  });
});
