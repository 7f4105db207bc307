// The job envelope: what the functions decided about a job, signed with the service key over its
// RFC 8785 canonical JSON. The worker trusts nothing else it reads from Redis (docs/architecture.md
// #4).
import { z } from "zod";
import { canonicalBytes, fromBase64Url, sha256Hex, toBase64Url } from "../encoding";
import {
  type RiskInput,
  type RiskThresholds,
  riskInputSchema,
  selectTier,
  type Tier,
  thresholdsOf,
} from "../risk";
import { TRACEPARENT } from "../tracing";
import { type JobSpec, jobIdSchema, jobSpecSchema, type SandboxSettings } from "./schema";

/** Domain separation: an envelope signature can never be replayed as another signed object. */
export const ENVELOPE_TYPE = "sigil.job-envelope.v1";

export interface JobEnvelope {
  type: typeof ENVELOPE_TYPE;
  jobId: string;
  submitter: { kid: string; subject: string | null };
  spec: JobSpec;
  image: string;
  tier: Tier;
  /**
   * The inputs the tier was derived from, so the worker can recompute it: the server's (the
   * submitting key's trust as codeTrustLevel, what the job and policy imply), raised by what the
   * submitter declared. null only in envelopes without an assessment (the default tier).
   */
  risk: RiskInput | null;
  riskScore: number | null;
  riskLevel: "low" | "medium" | "high" | null;
  /** A tier the policy demanded (it may raise the tier, never lower it). */
  policyMinimumTier: Tier | null;
  policyDecisionId: string;
  createdAt: string;
  expiresAt: string;
  /**
   * The submitting key's job quotas (docs/governance.md), enforced by the queue and the workers.
   */
  quota?: JobQuota;
  /**
   * The W3C `traceparent` of the submit request's span, when a trace is being recorded
   * (docs/operating.md "Metrics and traces"): the worker continues the trace from it. Signed like
   * every other field; it decides nothing.
   */
  traceparent?: string;
}

export interface JobQuota {
  /** Most unfinished jobs of the submitter, this one included. */
  queuedJobs: number;
  /** Most jobs of the submitter running at once. */
  runningJobs: number;
}

export interface SignedEnvelope {
  envelope: JobEnvelope;
  /** Service key id (RFC 7638 thumbprint). */
  kid: string;
  /** base64url Ed25519 signature over canonicalJson(envelope). */
  signature: string;
}

export interface EnvelopeSigner {
  readonly kid: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

const tier = z.enum(["docker", "gvisor"]);
const isoTime = z
  .string()
  .max(40)
  .refine((s) => Number.isFinite(Date.parse(s)), "must be an RFC 3339 timestamp");

/** Shape only: bounds on the spec are checked by the verifier with its own settings. */
const envelopeShape = z.strictObject({
  type: z.literal(ENVELOPE_TYPE),
  jobId: jobIdSchema,
  submitter: z.strictObject({
    kid: z.string().min(1).max(256),
    subject: z.string().max(256).nullable(),
  }),
  spec: z.record(z.string(), z.unknown()),
  image: z.string().min(1).max(256),
  tier,
  risk: riskInputSchema.nullable(),
  riskScore: z.number().min(0).max(1).nullable(),
  riskLevel: z.enum(["low", "medium", "high"]).nullable(),
  policyMinimumTier: tier.nullable(),
  policyDecisionId: z.string().min(1).max(256),
  createdAt: isoTime,
  expiresAt: isoTime,
  quota: z
    .strictObject({
      queuedJobs: z.number().int().min(1).max(1_000_000),
      runningJobs: z.number().int().min(1).max(4096),
    })
    .optional(),
  traceparent: z.string().regex(TRACEPARENT, "must be a W3C traceparent").optional(),
});

export const signedEnvelopeSchema = z.strictObject({
  envelope: envelopeShape,
  kid: z.string().min(1).max(256),
  signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, "must be a base64url Ed25519 signature"),
});

export const envelopeHash = (e: JobEnvelope): string => sha256Hex(canonicalBytes(e));

export async function signEnvelope(
  envelope: JobEnvelope,
  signer: EnvelopeSigner,
): Promise<SignedEnvelope> {
  const signature = await signer.sign(canonicalBytes(envelope));
  return { envelope, kid: signer.kid, signature: toBase64Url(signature) };
}

export type EnvelopeRejection =
  | "malformed"
  | "unknown-key"
  | "bad-signature"
  | "expired"
  | "not-yet-valid"
  | "spec-invalid"
  | "image-not-allowed"
  | "tier-mismatch";

export type EnvelopeVerdict =
  | {
      ok: true;
      /** As this side parsed it: the spec bounded, with its defaults applied. */
      envelope: JobEnvelope;
      envelopeHash: string;
      /** The signing key id and the signature that verified. */
      kid: string;
      signature: string;
    }
  | { ok: false; reason: EnvelopeRejection; detail: string; jobId?: string; envelopeHash?: string };

export interface EnvelopeVerifyOptions {
  /** Resolves a service key id to its Ed25519 public key; undefined = unknown. */
  serviceKey: (kid: string) => Promise<Uint8Array | undefined>;
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>;
  sandbox: SandboxSettings;
  defaultTier: Tier;
  thresholds: RiskThresholds;
  /** ms since epoch; default Date.now(). */
  now?: number;
  /** Tolerated clock difference for createdAt in the future. Default 60 s. */
  skewMs?: number;
}

/**
 * The checks every verifier of envelopes (the worker, the job gateway) runs under its own
 * configuration: its sandbox bounds, default tier and risk thresholds (docs/sandbox.md).
 */
export function envelopeChecks(
  config: {
    sandbox: SandboxSettings;
    security: { default_sandbox_tier: Tier };
    risk: { medium_threshold: number; high_threshold: number };
  },
  serviceKey: EnvelopeVerifyOptions["serviceKey"],
  verify: EnvelopeVerifyOptions["verify"],
): EnvelopeVerifyOptions {
  return {
    serviceKey,
    verify,
    sandbox: config.sandbox,
    defaultTier: config.security.default_sandbox_tier,
    thresholds: thresholdsOf(config.risk),
  };
}

const reject = (
  reason: EnvelopeRejection,
  detail: string,
  extra: { jobId?: string; envelopeHash?: string } = {},
): EnvelopeVerdict => ({ ok: false, reason, detail, ...extra });

/**
 * Checks, in order: shape, signature under the service key, validity window, spec bounds under
 * this side's settings, image allow-list, and the tier recomputed from the signed risk inputs.
 * Never throws: every failure is a typed rejection.
 */
export async function verifyEnvelope(
  input: unknown,
  opts: EnvelopeVerifyOptions,
): Promise<EnvelopeVerdict> {
  const parsed = signedEnvelopeSchema.safeParse(input);
  if (!parsed.success) {
    const jobId = (input as { envelope?: { jobId?: unknown } } | null)?.envelope?.jobId;
    return reject(
      "malformed",
      parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
        .join("; "),
      typeof jobId === "string" && jobId.length <= 128 ? { jobId } : {},
    );
  }
  const { envelope, kid, signature } = parsed.data;
  const ids = { jobId: envelope.jobId };
  let hash: string;
  let message: Uint8Array;
  try {
    message = canonicalBytes(envelope);
    hash = sha256Hex(message);
  } catch {
    return reject("malformed", "envelope has no canonical JSON form", ids);
  }
  const withHash = { ...ids, envelopeHash: hash };

  let publicKey: Uint8Array | undefined;
  try {
    publicKey = await opts.serviceKey(kid);
  } catch (e) {
    return reject("unknown-key", `service key lookup failed: ${(e as Error).message}`, withHash);
  }
  if (!publicKey) return reject("unknown-key", `service key ${kid} is not known`, withHash);
  let good = false;
  try {
    good = await opts.verify(publicKey, message, fromBase64Url(signature));
  } catch {
    good = false;
  }
  if (!good) return reject("bad-signature", "envelope signature does not verify", withHash);

  const now = opts.now ?? Date.now();
  const created = Date.parse(envelope.createdAt);
  const expires = Date.parse(envelope.expiresAt);
  if (!(expires > now))
    return reject("expired", `envelope expired at ${envelope.expiresAt}`, withHash);
  if (created - (opts.skewMs ?? 60_000) > now)
    return reject(
      "not-yet-valid",
      `envelope created in the future (${envelope.createdAt})`,
      withHash,
    );

  const spec = jobSpecSchema({ ...opts.sandbox, images: [envelope.image] }).safeParse(
    envelope.spec,
  );
  if (!spec.success) {
    const first = spec.error.issues[0];
    return reject(
      "spec-invalid",
      `spec exceeds this node's bounds: ${first ? `${first.path.join(".")}: ${first.message}` : "invalid"}`,
      withHash,
    );
  }
  if (envelope.spec.image !== envelope.image)
    return reject("malformed", "spec.image differs from envelope.image", withHash);
  if (!opts.sandbox.images.includes(envelope.image))
    return reject(
      "image-not-allowed",
      `image ${envelope.image} is not on the allow-list`,
      withHash,
    );

  const expected = selectTier(envelope.risk ?? undefined, {
    defaultTier: opts.defaultTier,
    thresholds: opts.thresholds,
    ...(envelope.policyMinimumTier ? { policyMinimum: envelope.policyMinimumTier } : {}),
  });
  if (expected.tier !== envelope.tier)
    return reject(
      "tier-mismatch",
      `envelope says ${envelope.tier}, the signed risk inputs give ${expected.tier}`,
      withHash,
    );
  const score = expected.assessment?.score ?? null;
  if (score !== envelope.riskScore)
    return reject("tier-mismatch", "riskScore does not match the signed risk inputs", withHash);

  // The spec as this side parsed it (bounded, defaults applied); the hash stays the signed bytes'.
  return {
    ok: true,
    envelope: { ...envelope, spec: spec.data as JobSpec },
    envelopeHash: hash,
    kid,
    signature,
  };
}
