// One job spec, one set of bounds (issue 15, item 14): every spec the API accepts goes through the
// worker's whole path without a refusal (the signed envelope re-parsed under the worker's
// settings, the sandbox driver's own spec check, the job archive, the Docker create options),
// and the values on which API and worker used to disagree are refused at submission.
import Docker from "dockerode";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, type SigilConfig } from "../../shared/config";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import {
  envelopeChecks,
  type JobEnvelope,
  jobRequestSchema,
  LIMIT_BOUNDS,
  signEnvelope,
  specFromRequest,
  verifyEnvelope,
} from "../../shared/jobs";
import { sandboxRunSpec } from "../../worker/jobs/driver";
import { basePreflight } from "../../worker/jobs/lifecycle";
import { buildJobArchive, createOptions, Sandbox } from "../../worker/sandbox";
import { shapeOf } from "../../worker/sandbox/config";
import { connectRedis } from "../support/redis";
import { newSigner } from "./support/harness";

const MiB = 1024 * 1024;
const B = LIMIT_BOUNDS;

/** The API at its widest: every configured maximum at the hard bound. */
const wide = loadConfig({
  env: {
    SIGIL_SANDBOX_MEMORY_MB: String(B.memoryMb.max),
    SIGIL_SANDBOX_CPUS: String(B.cpus.max),
    SIGIL_SANDBOX_PIDS: String(B.pids.max),
    SIGIL_SANDBOX_OUTPUT_BYTES: String(B.outputBytes.max),
    SIGIL_SANDBOX_MAX_TIMEOUT_MS: String(B.timeoutMs.max),
  },
});
const defaults = loadConfig({ env: {} });

// One driver per configuration (the image allow-list is all it takes from it); never started.
const sandboxes = new Map<SigilConfig, Sandbox>();
const sandboxFor = (config: SigilConfig): Sandbox => {
  let sb = sandboxes.get(config);
  if (!sb) {
    sb = new Sandbox({ workerId: "bounds", images: config.sandbox.images });
    sandboxes.set(config, sb);
  }
  return sb;
};
afterAll(() => Promise.all([...sandboxes.values()].map((s) => s.shutdown({ graceMs: 0 }))));

let service: Signer;
beforeAll(async () => {
  service = await newSigner();
});
let seq = 0;

/** Whether the API's schema accepts the request body. */
function apiAccepts(config: SigilConfig, body: unknown): boolean {
  return jobRequestSchema(config.sandbox).safeParse(body).success;
}

/**
 * The worker's path for a body the API accepted: envelope signed and verified under the worker's
 * settings (the same config here), the spec the consumer hands the driver, the driver's own
 * check, the archive under the driver's payload cap, and the container's create options.
 * Throws where the worker would refuse the job.
 */
async function workerRuns(config: SigilConfig, body: unknown): Promise<void> {
  const spec = specFromRequest(jobRequestSchema(config.sandbox).parse(body));
  const now = Date.now();
  const envelope: JobEnvelope = {
    type: "sigil.job-envelope.v1",
    jobId: `bounds-${++seq}`,
    submitter: { kid: "agent", subject: null },
    spec,
    image: spec.image,
    tier: config.security.default_sandbox_tier,
    risk: null,
    riskScore: null,
    riskLevel: null,
    policyMinimumTier: null,
    policyDecisionId: "d",
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
  };
  const verdict = await verifyEnvelope(
    await signEnvelope(envelope, service),
    envelopeChecks(
      config,
      async (kid) => (kid === service.kid ? service.publicKey : undefined),
      verifyEd25519,
    ),
  );
  if (!verdict.ok) throw new Error(`worker refused the envelope: ${verdict.detail}`);
  const sb = sandboxFor(config);
  const run = sb.parseSpec(sandboxRunSpec(verdict.envelope));
  buildJobArchive(run, sb.config.maxPayloadBytes);
  const h = createOptions(
    sb.config,
    shapeOf(run.image, run.tier, run.limits),
    { job: run.jobId, pool: "cold", run: "r" },
    "n",
  ).HostConfig!;
  // What dockerd itself accepts: at least 0.01 CPU and 6 MiB of memory.
  expect(h.NanoCpus).toBeGreaterThanOrEqual(1e7);
  expect(h.Memory).toBeGreaterThanOrEqual(6 * MiB);
}

const job = (extra: Record<string, unknown> = {}) => ({
  image: "sigil/busybox:1",
  command: ["true"],
  ...extra,
});

describe("the values API and worker disagreed on", () => {
  const refused: [string, SigilConfig, Record<string, unknown>][] = [
    ["memory 16 MiB", defaults, { limits: { memoryMb: 16 } }],
    ["memory 31 MiB", defaults, { limits: { memoryMb: 31 } }],
    ["cpus 1e-9", defaults, { limits: { cpus: 1e-9 } }],
    ["cpus 0.01 (gVisor does not start in it)", defaults, { limits: { cpus: 0.01 } }],
    ["pids above the sandbox's cap", wide, { limits: { pids: B.pids.max + 1 } }],
    ["a file that is also a directory", defaults, { files: { a: "1", "a/b": "2" } }],
    ["a file name longer than a tar header holds", defaults, { files: { ["x".repeat(101)]: "" } }],
    [
      "a directory name longer than a tar header holds",
      defaults,
      { files: { [`${"d".repeat(156)}/f`]: "" } },
    ],
    ["NUL in code", defaults, { command: undefined, code: "print(1)\0", language: "python" }],
  ];
  for (const [name, config, extra] of refused)
    it(`${name} is refused by the API schema`, () => {
      expect(apiAccepts(config, job(extra))).toBe(false);
    });

  it("a configuration cannot allow what a sandbox cannot run", () => {
    for (const [k, v] of [
      ["SIGIL_SANDBOX_PIDS", String(B.pids.max + 1)],
      ["SIGIL_SANDBOX_MEMORY_MB", "16"],
      ["SIGIL_SANDBOX_CPUS", "0.01"],
      ["SIGIL_SANDBOX_OUTPUT_BYTES", String(B.outputBytes.max + 1)],
    ] as const)
      expect(() => loadConfig({ env: { [k]: v } }), k).toThrow(ConfigError);
  });
});

describe("a worker whose host cannot give what the API accepts", () => {
  it("refuses to start when sandbox.cpus is more than the host's CPUs", async () => {
    // dockerd refuses a container with more CPUs than the host has.
    const ncpu = ((await new Docker().info()) as { NCPU: number }).NCPU;
    if (ncpu >= B.cpus.max) return; // no configuration can ask for more than this host has
    const over = loadConfig({ env: { SIGIL_SANDBOX_CPUS: String(ncpu + 1) } });
    const redis = connectRedis();
    try {
      const problems = await basePreflight(over, redis);
      expect(problems.some((p) => p.includes(`sandbox.cpus is ${ncpu + 1}`))).toBe(true);
      expect((await basePreflight(defaults, redis)).filter((p) => p.includes("cpus"))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

describe("every spec the API accepts, the worker runs", () => {
  it("at each limit's minimum and maximum", async () => {
    for (const limits of [
      { memoryMb: B.memoryMb.min, cpus: B.cpus.min, pids: B.pids.min, outputBytes: 1024 },
      {
        memoryMb: B.memoryMb.max,
        cpus: B.cpus.max,
        pids: B.pids.max,
        outputBytes: B.outputBytes.max,
      },
    ]) {
      for (const timeoutMs of [B.timeoutMs.min, B.timeoutMs.max]) {
        const body = job({ limits, timeoutMs });
        expect(apiAccepts(wide, body)).toBe(true);
        await workerRuns(wide, body);
      }
    }
  });

  it("with every payload at its maximum, and the longest paths a tar header holds", async () => {
    // 64 files of 64 KiB (4 MiB), each path as long as the archive allows, quote-heavy env and
    // command (sh quoting grows each ' to four bytes in the run script).
    const files: Record<string, string> = {};
    for (let i = 0; i < 64; i++) {
      const dir = `${"d".repeat(60)}${String(i).padStart(2, "0")}/${"e".repeat(80)}`;
      files[`${dir}/${"f".repeat(100 - 3)}${String(i).padStart(3, "0")}`] = "x".repeat(64 * 1024);
    }
    const env: Record<string, string> = {};
    for (let i = 0; i < 64; i++) env[`V${i}`] = "'".repeat(4096);
    const heavy = {
      files,
      env,
      stdin: "s".repeat(MiB),
    };
    const command = Array.from({ length: 8 }, () => "'".repeat(8192));
    for (const body of [
      job({ ...heavy, command }),
      job({ ...heavy, command: undefined, code: "c".repeat(256 * 1024), language: "sh" }),
    ]) {
      expect(apiAccepts(defaults, body)).toBe(true);
      await workerRuns(defaults, body);
    }
  });

  it("for any limits, times and file names (property)", async () => {
    const outside = fc.oneof(
      fc.double({ noNaN: true, min: -1, max: 70_000 }),
      fc.integer({ min: -1, max: 70 * MiB }),
      fc.constantFrom(0, 1e-9, 0.01, 0.099, 0.1, 16, 31, 32, 4096, 4097, 65_536, 65_537),
    );
    // Half the draws inside the bounds, so that many specs are accepted and go the whole way.
    const value = (b: { min: number; max: number }, integer = true) =>
      fc.oneof(
        integer
          ? fc.integer({ min: b.min, max: b.max })
          : fc.double({ noNaN: true, min: b.min, max: b.max }),
        outside,
      );
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,120}$/);
    const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"));
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            memoryMb: value(B.memoryMb),
            cpus: value(B.cpus, false),
            pids: value(B.pids),
            outputBytes: value(B.outputBytes),
          },
          { requiredKeys: [] },
        ),
        fc.option(value(B.timeoutMs), { nil: undefined }),
        fc.dictionary(path, fc.string({ maxLength: 8 }), { maxKeys: 4 }),
        async (limits, timeoutMs, files) => {
          const body = job({ limits, ...(timeoutMs === undefined ? {} : { timeoutMs }), files });
          if (!apiAccepts(wide, body)) return;
          accepted++;
          await workerRuns(wide, body);
        },
      ),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(20);
  });
});
