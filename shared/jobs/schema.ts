// POST /v1/jobs input, bounded everywhere (HTTP-API.md Jobs, SANDBOX.md). Limits are capped by the
// configured maxima, so the schema is built from the sandbox settings; the worker re-parses the
// spec from the envelope with its own settings, so a spec that slipped past one side fails there.
import { z } from "zod";
import type { SigilConfig } from "../config";
import { riskDeclarationSchema } from "../risk";

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

// Relative paths only, no "..", no hidden control dir: the entrypoint owns /work/.sigil.
const filePath = z
  .string()
  .min(1)
  .max(JOB_BOUNDS.pathChars)
  .regex(/^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/, "must be a relative path of [A-Za-z0-9._-]")
  .refine((p) => !p.split("/").some((seg) => seg === "." || seg === ".."), "no . or .. segments")
  .refine((p) => p !== ".sigil" && !p.startsWith(".sigil/"), ".sigil/ is reserved");

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a POSIX environment variable name");

const networkRule = z.strictObject({
  domain: z.string().min(1).max(253).optional(),
  cidr: z.string().min(1).max(64).optional(),
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(64),
  protocol: z.enum(["tcp", "udp"]).default("tcp"),
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
  network: { allow: never[] };
}

function specShape(s: SandboxSettings) {
  return {
    image: z
      .string()
      .min(1)
      .max(256)
      .refine((i) => s.images.includes(i), {
        message: `image is not on the allow-list (${s.images.join(", ")})`,
      }),
    command: z
      .array(z.string().max(JOB_BOUNDS.argBytes).refine(maxBytes(JOB_BOUNDS.argBytes)))
      .min(1)
      .max(JOB_BOUNDS.commandArgs)
      .refine(
        (a) => a.reduce((n, x) => n + byteLength(x), 0) <= JOB_BOUNDS.commandBytes,
        `command may total at most ${JOB_BOUNDS.commandBytes} bytes`,
      )
      .refine((a) => a.every((x) => !x.includes("\0")), "arguments may not contain NUL")
      .optional(),
    code: z
      .string()
      .min(1)
      .max(JOB_BOUNDS.codeBytes)
      .refine(maxBytes(JOB_BOUNDS.codeBytes), `code may be at most ${JOB_BOUNDS.codeBytes} bytes`)
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
      .record(
        envName,
        z
          .string()
          .max(JOB_BOUNDS.envValueBytes)
          .refine((v) => !v.includes("\0"), "no NUL"),
      )
      .refine(
        (e) => Object.keys(e).length <= JOB_BOUNDS.envVars,
        `at most ${JOB_BOUNDS.envVars} variables`,
      )
      .optional(),
    timeoutMs: z.number().int().min(100).max(s.max_timeout_ms).default(s.default_timeout_ms),
    limits: z
      .strictObject({
        memoryMb: z.number().int().min(16).max(s.memory_mb).default(s.memory_mb),
        cpus: z.number().gt(0).max(s.cpus).default(s.cpus),
        pids: z.number().int().min(8).max(s.pids).default(s.pids),
        outputBytes: z.number().int().min(1024).max(s.output_bytes).default(s.output_bytes),
      })
      .default({
        memoryMb: s.memory_mb,
        cpus: s.cpus,
        pids: s.pids,
        outputBytes: s.output_bytes,
      }),
  };
}

type RunShape = { command?: unknown; code?: unknown; language?: unknown };
function exactlyOneRunForm(v: RunShape, ctx: z.RefinementCtx): void {
  const hasCommand = v.command !== undefined;
  const hasCode = v.code !== undefined;
  if (hasCommand === hasCode) {
    ctx.addIssue({
      code: "custom",
      path: hasCommand ? ["code"] : ["command"],
      message: "give either command (string[]) or code + language, not both and not neither",
    });
  }
  if (hasCode && v.language === undefined)
    ctx.addIssue({ code: "custom", path: ["language"], message: "code needs a language" });
  if (!hasCode && v.language !== undefined)
    ctx.addIssue({ code: "custom", path: ["language"], message: "language goes with code" });
}

/** The POST /v1/jobs body. `network.allow` is parsed here and refused by the route (no egress yet). */
export function jobRequestSchema(s: SandboxSettings) {
  return z
    .strictObject({
      ...specShape(s),
      network: z
        .strictObject({
          allow: z
            .array(
              networkRule.refine((r) => (r.domain === undefined) !== (r.cidr === undefined), {
                message: "each rule names exactly one of domain or cidr",
              }),
            )
            .max(JOB_BOUNDS.networkRules),
        })
        .default({ allow: [] }),
      // Declared inputs only raise the score; codeTrustLevel is the key's trust (GOVERNANCE.md).
      risk: riskDeclarationSchema.optional(),
    })
    .superRefine(exactlyOneRunForm);
}
export type JobRequest = z.infer<ReturnType<typeof jobRequestSchema>>;

/** The spec as signed in an envelope: same bounds, no network (refused before signing), no risk. */
export function jobSpecSchema(s: SandboxSettings) {
  return z
    .strictObject({
      ...specShape(s),
      network: z.strictObject({ allow: z.array(z.never()).max(0) }),
    })
    .superRefine(exactlyOneRunForm);
}

/** Builds the signed spec from a validated request (drops risk, which the envelope carries). */
export function specFromRequest(r: JobRequest): JobSpec {
  if (r.network.allow.length > 0) {
    throw new TypeError("network egress is not available; refuse before building a spec");
  }
  const spec: JobSpec = {
    image: r.image,
    timeoutMs: r.timeoutMs,
    limits: { ...r.limits },
    network: { allow: [] },
  };
  if (r.command !== undefined) spec.command = [...r.command];
  if (r.code !== undefined) spec.code = r.code;
  if (r.language !== undefined) spec.language = r.language;
  if (r.files !== undefined) spec.files = { ...r.files };
  if (r.stdin !== undefined) spec.stdin = r.stdin;
  if (r.env !== undefined) spec.env = { ...r.env };
  return spec;
}
