// The one definition of a job spec and its bounds (docs/http-api.md Jobs, docs/sandbox.md): the API
// validates POST /v1/jobs with it (capped by the configured maxima), the worker re-parses the
// signed spec from the envelope with it (under its own settings), and the sandbox driver's spec
// type is built from the same fields with the hard bounds of ./bounds.ts. A job the API accepts is
// a job the worker runs; a spec that slipped past one side fails at the other, before anything
// runs.
import { z } from "zod";
import type { SigilConfig } from "../config";
import { riskDeclarationSchema } from "../risk";
import { cidrProblem } from "../schemapin/addresses";
import {
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUT_MS,
  fitsJobArchive,
  LIMIT_BOUNDS,
  splitUstarPath,
} from "./bounds";
import { domainProblem, type EgressRule } from "./egress";

export { DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, fitsJobArchive, LIMIT_BOUNDS, splitUstarPath };

export const JOB_BOUNDS = {
  commandArgs: 256,
  argBytes: 8192,
  commandBytes: 64 * 1024,
  codeBytes: 256 * 1024,
  files: 64,
  fileBytes: 1024 * 1024,
  filesTotalBytes: 4 * 1024 * 1024,
  pathChars: 255,
  envVars: 64,
  envValueBytes: 4096,
  stdinBytes: 1024 * 1024,
  networkRules: 64,
} as const;

export type SandboxSettings = Pick<
  SigilConfig["sandbox"],
  | "images"
  | "default_timeout_ms"
  | "max_timeout_ms"
  | "memory_mb"
  | "cpus"
  | "pids"
  | "output_bytes"
>;

const byteLength = (s: string) => new TextEncoder().encode(s).length;
const maxBytes = (n: number) => (s: string) => byteLength(s) <= n;

/** Queue job id, record key, container label and name part alike. */
export const jobIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, "job ids are 1-128 of [A-Za-z0-9_-]");

// Relative paths only, no "..", no hidden control dir (the entrypoint owns /work/.sigil), and
// storable in the job archive's ustar headers.
const filePath = z
  .string()
  .min(1)
  .max(JOB_BOUNDS.pathChars)
  .regex(/^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/, "must be a relative path of [A-Za-z0-9._-]")
  .refine((p) => !p.split("/").some((seg) => seg === "." || seg === ".."), "no . or .. segments")
  .refine((p) => p !== ".sigil" && !p.startsWith(".sigil/"), ".sigil/ is reserved")
  .refine(fitsJobArchive, "path does not fit a tar header (name ≤ 100 bytes after the last /)");

/** "a" and "a/b" cannot both be files: the archive would not unpack. */
function noFileIsADirectory(files: Record<string, string>): boolean {
  const names = new Set(Object.keys(files));
  for (const path of names) {
    const segs = path.split("/");
    for (let i = 1; i < segs.length; i++) if (names.has(segs.slice(0, i).join("/"))) return false;
  }
  return true;
}

const noNul = (s: string) => !s.includes("\0");

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a POSIX environment variable name");

const networkRule = z
  .strictObject({
    domain: z
      .string()
      .min(1)
      .max(253)
      .superRefine((v, ctx) => {
        const problem = domainProblem(v);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    cidr: z
      .string()
      .min(1)
      .max(64)
      .superRefine((v, ctx) => {
        const problem = cidrProblem(v);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    ports: z.array(z.number().int().min(1).max(65535)).min(1).max(64),
    protocol: z.enum(["tcp", "udp"]).default("tcp"),
  })
  .refine((r) => (r.domain === undefined) !== (r.cidr === undefined), {
    message: "each rule names exactly one of domain or cidr",
  });
const networkShape = z.strictObject({
  allow: z.array(networkRule).max(JOB_BOUNDS.networkRules),
});

/** Everything the sandbox needs to run the job, after defaults. Signed inside the envelope. */
export interface JobSpec {
  image: string;
  command?: string[];
  code?: string;
  language?: "python" | "sh";
  files?: Record<string, string>;
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs: number;
  limits: { memoryMb: number; cpus: number; pids: number; outputBytes: number };
  /** The egress rules as admitted (docs/sandbox.md, "Egress"); empty: no network at all. */
  network: { allow: EgressRule[] };
}

export interface JobLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
  outputBytes: number;
}

/** Maxima and defaults a spec is parsed against; the minima are always LIMIT_BOUNDS'. */
export interface SpecBounds {
  /** Allow-list checked by the schema; omitted where the caller checks images itself. */
  images?: readonly string[];
  timeoutMs: { max: number; default: number };
  limits: { max: JobLimits; default: JobLimits };
}

/** The API and the worker: the configured values are both the maxima and the defaults. */
export function boundsFromSettings(s: SandboxSettings): SpecBounds {
  const limits = { memoryMb: s.memory_mb, cpus: s.cpus, pids: s.pids, outputBytes: s.output_bytes };
  return {
    images: s.images,
    timeoutMs: { max: s.max_timeout_ms, default: s.default_timeout_ms },
    limits: { max: limits, default: limits },
  };
}

/** The sandbox driver on its own: every value a sandbox can run, docs/sandbox.md's defaults. */
export const SANDBOX_BOUNDS: SpecBounds = {
  timeoutMs: { max: LIMIT_BOUNDS.timeoutMs.max, default: DEFAULT_TIMEOUT_MS },
  limits: {
    max: {
      memoryMb: LIMIT_BOUNDS.memoryMb.max,
      cpus: LIMIT_BOUNDS.cpus.max,
      pids: LIMIT_BOUNDS.pids.max,
      outputBytes: LIMIT_BOUNDS.outputBytes.max,
    },
    default: { ...DEFAULT_LIMITS },
  },
};

function limitsSchema(max: JobLimits, dflt: JobLimits) {
  const b = LIMIT_BOUNDS;
  return z
    .strictObject({
      memoryMb: z.number().int().min(b.memoryMb.min).max(max.memoryMb).default(dflt.memoryMb),
      cpus: z.number().min(b.cpus.min).max(max.cpus).default(dflt.cpus),
      pids: z.number().int().min(b.pids.min).max(max.pids).default(dflt.pids),
      outputBytes: z
        .number()
        .int()
        .min(b.outputBytes.min)
        .max(max.outputBytes)
        .default(dflt.outputBytes),
    })
    .default({ ...dflt });
}

function specShape(b: SpecBounds) {
  const images = b.images;
  return {
    image: images
      ? z
          .string()
          .min(1)
          .max(256)
          .refine((i) => images.includes(i), {
            message: `image is not on the allow-list (${images.join(", ")})`,
          })
      : z.string().min(1).max(256),
    command: z
      .array(z.string().max(JOB_BOUNDS.argBytes).refine(maxBytes(JOB_BOUNDS.argBytes)))
      .min(1)
      .max(JOB_BOUNDS.commandArgs)
      .refine(
        (a) => a.reduce((n, x) => n + byteLength(x), 0) <= JOB_BOUNDS.commandBytes,
        `command may total at most ${JOB_BOUNDS.commandBytes} bytes`,
      )
      .refine((a) => a.every(noNul), "arguments may not contain NUL")
      .optional(),
    code: z
      .string()
      .min(1)
      .max(JOB_BOUNDS.codeBytes)
      .refine(maxBytes(JOB_BOUNDS.codeBytes), `code may be at most ${JOB_BOUNDS.codeBytes} bytes`)
      .refine(noNul, "code may not contain NUL")
      .optional(),
    language: z.enum(["python", "sh"]).optional(),
    files: z
      .record(filePath, z.string().max(JOB_BOUNDS.fileBytes))
      .refine((f) => Object.keys(f).length <= JOB_BOUNDS.files, `at most ${JOB_BOUNDS.files} files`)
      .refine(
        (f) =>
          Object.values(f).reduce((n, x) => n + byteLength(x), 0) <= JOB_BOUNDS.filesTotalBytes,
        `files may total at most ${JOB_BOUNDS.filesTotalBytes} bytes`,
      )
      .refine(noFileIsADirectory, "a file path may not also be the directory of another file")
      .optional(),
    stdin: z
      .string()
      .max(JOB_BOUNDS.stdinBytes)
      .refine(
        maxBytes(JOB_BOUNDS.stdinBytes),
        `stdin may be at most ${JOB_BOUNDS.stdinBytes} bytes`,
      )
      .optional(),
    env: z
      .record(envName, z.string().max(JOB_BOUNDS.envValueBytes).refine(noNul, "no NUL"))
      .refine(
        (e) => Object.keys(e).length <= JOB_BOUNDS.envVars,
        `at most ${JOB_BOUNDS.envVars} variables`,
      )
      .optional(),
    timeoutMs: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.timeoutMs.min)
      .max(b.timeoutMs.max)
      .default(b.timeoutMs.default),
    limits: limitsSchema(b.limits.max, b.limits.default),
  };
}

type RunShape = { command?: unknown; code?: unknown; language?: unknown };
function runForm(languageRequired: boolean) {
  return (v: RunShape, ctx: z.RefinementCtx): void => {
    const hasCommand = v.command !== undefined;
    const hasCode = v.code !== undefined;
    if (hasCommand === hasCode) {
      ctx.addIssue({
        code: "custom",
        path: hasCommand ? ["code"] : ["command"],
        message: "give either command (string[]) or code + language, not both and not neither",
      });
    }
    if (languageRequired && hasCode && v.language === undefined)
      ctx.addIssue({ code: "custom", path: ["language"], message: "code needs a language" });
    if (!hasCode && v.language !== undefined)
      ctx.addIssue({ code: "custom", path: ["language"], message: "language goes with code" });
  };
}
const exactlyOneRunForm = runForm(true);

/**
 * The POST /v1/jobs body. `network.allow` is parsed here; configuration and policy admit it.
 */
export function jobRequestSchema(s: SandboxSettings) {
  return z
    .strictObject({
      ...specShape(boundsFromSettings(s)),
      network: networkShape.default({ allow: [] }),
      // Declared inputs only raise the score; codeTrustLevel is the key's trust
      // (docs/governance.md).
      risk: riskDeclarationSchema.optional(),
    })
    .superRefine(exactlyOneRunForm);
}
export type JobRequest = z.infer<ReturnType<typeof jobRequestSchema>>;

/** The spec as signed in an envelope: same bounds, the admitted egress rules, no risk. */
export function jobSpecSchema(s: SandboxSettings) {
  return z
    .strictObject({
      ...specShape(boundsFromSettings(s)),
      network: networkShape,
    })
    .superRefine(exactlyOneRunForm);
}

/**
 * What the sandbox driver runs: the same spec fields and rules, plus the job id and tier, bounded
 * by what a sandbox can run at all (each worker's configured maxima are checked on the envelope
 * before this). A code job without a language runs as python (the driver's library default).
 */
export const sandboxJobSpecSchema = z
  .strictObject({
    jobId: jobIdSchema,
    tier: z.enum(["docker", "gvisor"]),
    ...specShape(SANDBOX_BOUNDS),
  })
  .superRefine(runForm(false));
export type SandboxJobSpecInput = z.input<typeof sandboxJobSpecSchema>;
export type SandboxJobSpec = z.output<typeof sandboxJobSpecSchema>;

/** Builds the signed spec from a validated request (drops risk, which the envelope carries). */
export function specFromRequest(r: JobRequest): JobSpec {
  const spec: JobSpec = {
    image: r.image,
    timeoutMs: r.timeoutMs,
    limits: { ...r.limits },
    network: { allow: r.network.allow.map((rule) => ({ ...rule, ports: [...rule.ports] })) },
  };
  if (r.command !== undefined) spec.command = [...r.command];
  if (r.code !== undefined) spec.code = r.code;
  if (r.language !== undefined) spec.language = r.language;
  if (r.files !== undefined) spec.files = { ...r.files };
  if (r.stdin !== undefined) spec.stdin = r.stdin;
  if (r.env !== undefined) spec.env = { ...r.env };
  return spec;
}
