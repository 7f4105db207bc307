// The signed job result (docs/http-api.md Jobs): canonical JSON of the result body, signed by the
// worker that ran the job. Anyone with the worker's public key can check it, and its envelopeHash
// ties it to exactly the envelope the service signed.
import { z } from "zod";
import { canonicalBytes, fromBase64Url, sha256Hex, toBase64Url, utf8 } from "../encoding";
import type { Tier } from "../risk";
import { type EgressSummary, egressSummarySchema } from "./egress";

export const TERMINAL_STATUSES = [
  "succeeded",
  "failed",
  "timeout",
  "oom",
  "killed",
  "rejected",
  "error",
] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
/** `awaiting_approval`: held, signed, until its approval is answered (docs/governance.md). */
export const JOB_STATUSES = [
  "awaiting_approval",
  "queued",
  "running",
  ...TERMINAL_STATUSES,
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const isTerminal = (s: string): s is TerminalStatus =>
  (TERMINAL_STATUSES as readonly string[]).includes(s);

/**
 * The signed body. docs/http-api.md lists the fields from jobId to workerId; `status` and `reason` are
 * added so the outcome itself (timeout vs killed, why a job was rejected) is covered by the
 * signature too, not only the exit code.
 */
export interface ResultBody {
  jobId: string;
  envelopeHash: string;
  image: string;
  tier: Tier;
  runtime: "runc" | "runsc" | null;
  status: TerminalStatus;
  reason: string | null;
  exitCode: number | null;
  signal: string | null;
  stdoutHash: string;
  stderrHash: string;
  truncated: boolean;
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  workerId: string;
  /**
   * A job with egress rules: its connection log's counts and digest (docs/sandbox.md, "Egress").
   * Absent otherwise, so results signed before it existed verify unchanged.
   */
  egress?: EgressSummary;
}

export interface SignedResult {
  result: ResultBody;
  /** sha256 hex of canonicalJson(result). */
  resultHash: string;
  /** Worker key id. */
  kid: string;
  /** base64url Ed25519 over canonicalJson(result). */
  signature: string;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const iso = z
  .string()
  .max(40)
  .refine((s) => Number.isFinite(Date.parse(s)), "must be an RFC 3339 timestamp");

export const resultBodySchema = z.strictObject({
  jobId: z.string().min(1).max(128),
  envelopeHash: hex64,
  image: z.string().min(1).max(256),
  tier: z.enum(["docker", "gvisor"]),
  runtime: z.enum(["runc", "runsc"]).nullable(),
  status: z.enum(TERMINAL_STATUSES),
  reason: z.string().max(2048).nullable(),
  exitCode: z.number().int().min(-1).max(255).nullable(),
  signal: z.string().max(32).nullable(),
  stdoutHash: hex64,
  stderrHash: hex64,
  truncated: z.boolean(),
  durationMs: z.number().int().min(0).max(86_400_000),
  startedAt: iso,
  finishedAt: iso,
  workerId: z.string().min(1).max(128),
  egress: egressSummarySchema.optional(),
});

export const signedResultSchema = z.strictObject({
  result: resultBodySchema,
  resultHash: hex64,
  kid: z.string().min(1).max(256),
  signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, "must be a base64url Ed25519 signature"),
});

export const outputHash = (s: string): string => sha256Hex(utf8(s));
export const resultHash = (r: ResultBody): string => sha256Hex(canonicalBytes(r));

export async function signResult(
  result: ResultBody,
  signer: { readonly kid: string; sign(m: Uint8Array): Promise<Uint8Array> },
): Promise<SignedResult> {
  const bytes = canonicalBytes(result);
  return {
    result,
    resultHash: sha256Hex(bytes),
    kid: signer.kid,
    signature: toBase64Url(await signer.sign(bytes)),
  };
}

export type ResultRejection =
  | "malformed"
  | "bad-signature"
  | "job-mismatch"
  | "envelope-mismatch"
  | "output-mismatch"
  | "runtime-mismatch";

export type ResultVerdict =
  | { ok: true; result: ResultBody; resultHash: string }
  | { ok: false; reason: ResultRejection; detail: string };

export interface ResultExpectation {
  jobId: string;
  /** The envelope the service signed; omit to check the signature alone. */
  envelope?: { envelopeHash: string; image: string; tier: Tier };
  /** The output the report carries; checked against stdoutHash/stderrHash when given. */
  output?: { stdout: string; stderr: string };
}

/**
 * What a stored job's result must match: its id, its envelope (when the job is known), its output.
 */
export function expectationFor(
  jobId: string,
  job: { envelopeHash: string; image: string; tier: Tier } | undefined | null,
  output: { stdout: string; stderr: string },
): ResultExpectation {
  return {
    jobId,
    ...(job
      ? { envelope: { envelopeHash: job.envelopeHash, image: job.image, tier: job.tier } }
      : {}),
    output,
  };
}

const runtimeFor: Record<Tier, "runc" | "runsc"> = { docker: "runc", gvisor: "runsc" };

/** Verifies a signed result under the worker's public key and against the job. Never throws. */
export async function verifyResult(
  input: unknown,
  workerPublicKey: Uint8Array,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>,
  expect: ResultExpectation,
): Promise<ResultVerdict> {
  const parsed = signedResultSchema.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return {
      ok: false,
      reason: "malformed",
      detail: i ? `${i.path.join(".")}: ${i.message}` : "invalid",
    };
  }
  const { result, signature } = parsed.data;
  const bytes = canonicalBytes(result);
  const hash = sha256Hex(bytes);
  if (hash !== parsed.data.resultHash)
    return { ok: false, reason: "malformed", detail: "resultHash is not the hash of result" };
  let good = false;
  try {
    good = await verify(workerPublicKey, bytes, fromBase64Url(signature));
  } catch {
    good = false;
  }
  if (!good)
    return { ok: false, reason: "bad-signature", detail: "result signature does not verify" };
  if (result.jobId !== expect.jobId)
    return { ok: false, reason: "job-mismatch", detail: `result is for job ${result.jobId}` };
  const env = expect.envelope;
  // A rejection may name an envelope the service never signed (a forged one): that is its point.
  if (env && result.status !== "rejected") {
    if (result.envelopeHash !== env.envelopeHash)
      return {
        ok: false,
        reason: "envelope-mismatch",
        detail: "envelopeHash differs from the job's",
      };
    if (result.image !== env.image || result.tier !== env.tier)
      return {
        ok: false,
        reason: "envelope-mismatch",
        detail: "image or tier differs from the job's",
      };
    if (result.runtime !== null && result.runtime !== runtimeFor[env.tier])
      return {
        ok: false,
        reason: "runtime-mismatch",
        detail: `tier ${env.tier} must run on ${runtimeFor[env.tier]}, not ${result.runtime}`,
      };
  }
  if (result.status !== "rejected" && result.status !== "error" && result.runtime === null)
    return {
      ok: false,
      reason: "runtime-mismatch",
      detail: "a job that ran must name its runtime",
    };
  if (expect.output) {
    if (
      outputHash(expect.output.stdout) !== result.stdoutHash ||
      outputHash(expect.output.stderr) !== result.stderrHash
    )
      return {
        ok: false,
        reason: "output-mismatch",
        detail: "stdout/stderr do not match their hashes",
      };
  }
  return { ok: true, result, resultHash: hash };
}
