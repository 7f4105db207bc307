// Compliance frameworks as versioned data (docs/compliance.md "Frameworks"): a framework is a list
// of controls, each a reference (HIPAA §164.312(b), GDPR Art. 30, ...) and one check from a small
// fixed vocabulary over the audit trail and the configuration. Shipped: hipaa, gdpr, sox; custom
// ones load from JSON or TOML with the same schema and a clear error.
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import gdpr from "./frameworks/gdpr.json";
import hipaa from "./frameworks/hipaa.json";
import sox from "./frameworks/sox.json";

const wellFormed = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => s.isWellFormed(), "must be well-formed Unicode");

/** An event type, or a prefix pattern `area.*`. */
const EventTypePattern = z
  .string()
  .max(128)
  .regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*(\.\*)?$/, "must be an event type or `area.*`");
const EventTypes = z.array(EventTypePattern).min(1).max(64);

export const FrameworkIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be 1-64 of a-z 0-9 _ -");

export const INCIDENT_SEVERITIES = ["low", "medium", "high", "critical"] as const;

/** The fixed vocabulary of checks (docs/compliance.md "Checks"). */
export const CheckSchema = z.discriminatedUnion("kind", [
  // Every event of these types names an authenticated subject (access logging with user id).
  z.strictObject({ kind: z.literal("authenticated-subject"), eventTypes: EventTypes }),
  // Every change of these types carries a reason and/or a second person's approval.
  z.strictObject({
    kind: z.literal("change-approved"),
    eventTypes: EventTypes,
    requireReason: z.boolean().default(false),
    requireApproval: z.boolean().default(true),
  }),
  // No revoked key made a successful request after its revocation.
  z.strictObject({ kind: z.literal("revoked-keys-unused") }),
  // No subject held keys of both roles.
  z.strictObject({
    kind: z.literal("roles-separated"),
    roles: z.tuple([z.enum(["admin", "agent", "auditor"]), z.enum(["admin", "agent", "auditor"])]),
  }),
  // `audit_retention_days` ≥ minDays.
  z.strictObject({
    kind: z.literal("retention-minimum"),
    minDays: z.number().int().min(1).max(36500),
  }),
  // Every incident of these severities opened in the period reached `mitigated` within the target.
  z.strictObject({
    kind: z.literal("incident-timeliness"),
    severities: z.array(z.enum(INCIDENT_SEVERITIES)).min(1).max(4),
    withinHours: z.number().positive().max(8760),
  }),
  // The period's hash chain, signatures and Merkle tree verify.
  z.strictObject({ kind: z.literal("chain-verifies") }),
  // Keys are held encrypted at rest.
  z.strictObject({ kind: z.literal("encryption-at-rest") }),
  // Every event of these types that names a data subject holds it sealed per subject, so it can
  // be erased (docs/data-subjects.md).
  z.strictObject({ kind: z.literal("personal-data-sealed"), eventTypes: EventTypes }),
]);
export type Check = z.infer<typeof CheckSchema>;
export type CheckKind = Check["kind"];

export const ControlSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "must be 1-64 of a-z 0-9 . _ -"),
  reference: wellFormed(200),
  title: wellFormed(200),
  check: CheckSchema,
});
export type Control = z.infer<typeof ControlSchema>;

export const FrameworkSchema = z
  .strictObject({
    id: FrameworkIdSchema,
    name: wellFormed(200),
    version: z.string().regex(/^\d{1,6}\.\d{1,6}(\.\d{1,6})?$/, "must look like 1.0 or 1.0.0"),
    controls: z.array(ControlSchema).min(1).max(200),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.controls.forEach((c, i) => {
      if (seen.has(c.id))
        ctx.addIssue({ code: "custom", path: ["controls", i, "id"], message: `duplicate ${c.id}` });
      seen.add(c.id);
    });
  });
export type Framework = z.infer<typeof FrameworkSchema>;

export class FrameworkError extends Error {
  override name = "FrameworkError";
}

/**
 * One line per problem, naming where it is: `acme.toml: control "phi-access" (controls[2]):
 * check.minDays: Too small: expected number to be >=1`. The control's id is read from the raw
 * input, so the person fixing the file finds it by the name they wrote.
 */
function describeIssues(error: z.ZodError, raw: unknown, source: string): string {
  const controls = (raw as { controls?: unknown } | null)?.controls;
  return error.issues
    .map((i) => {
      const path = [...i.path];
      let where = source;
      if (path[0] === "controls" && typeof path[1] === "number") {
        const id = Array.isArray(controls)
          ? (controls[path[1]] as { id?: unknown } | null)?.id
          : undefined;
        where += `: control ${typeof id === "string" ? `${JSON.stringify(id.slice(0, 64))} ` : ""}(controls[${path[1]}])`;
        path.splice(0, 2);
      }
      const field = path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".");
      return `${where}: ${field ? `${field.replace(/\.\[/g, "[")}: ` : ""}${i.message}`;
    })
    .join("\n");
}

function validate(raw: unknown, source: string): Framework {
  const r = FrameworkSchema.safeParse(raw);
  if (!r.success) throw new FrameworkError(describeIssues(r.error, raw, source));
  return r.data;
}

function parseText(text: string, source: string): unknown {
  const toml = source.endsWith(".toml");
  try {
    return toml ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    throw new FrameworkError(
      `${source}: not valid ${toml ? "TOML" : "JSON"}: ${(e as Error).message}`,
    );
  }
}

/** Parses and validates a framework file (JSON, or TOML when `source` ends in .toml). */
export function parseFramework(text: string, source = "framework.json"): Framework {
  return validate(parseText(text, source), source);
}

/** Most custom frameworks one deployment may define (files and `frameworks_json` together). */
export const MAX_CUSTOM_FRAMEWORKS = 64;

/**
 * `[compliance] frameworks_json` (the edge has no files): one framework object or an array of
 * them, each validated as a file would be; errors name `source[i]`.
 */
export function parseFrameworksJson(text: string, source: string): Framework[] {
  if (text.trim() === "") return [];
  const raw = parseText(text, source);
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length > MAX_CUSTOM_FRAMEWORKS)
    throw new FrameworkError(
      `${source}: ${list.length} frameworks, at most ${MAX_CUSTOM_FRAMEWORKS}`,
    );
  return list.map((f, i) => validate(f, Array.isArray(raw) ? `${source}[${i}]` : source));
}

/** The shipped frameworks, validated once (a broken shipped file fails at start-up). */
export const SHIPPED_FRAMEWORKS: readonly Framework[] = [hipaa, gdpr, sox].map((f) =>
  FrameworkSchema.parse(f),
);

/** A registry of the shipped frameworks plus custom ones (which may not reuse a shipped id). */
export function frameworkRegistry(custom: readonly Framework[] = []): Map<string, Framework> {
  const m = new Map<string, Framework>();
  for (const f of [...SHIPPED_FRAMEWORKS, ...custom]) {
    if (m.has(f.id)) throw new FrameworkError(`framework ${f.id} is defined twice`);
    m.set(f.id, f);
  }
  return m;
}

/**
 * The largest `retention-minimum` among the frameworks a deployment is held to (`[compliance]
 * enforce`): retention may never be configured, or prune, below it (docs/compliance.md
 * "Retention"). 0 when none of them sets one.
 */
export function retentionFloor(
  registry: ReadonlyMap<string, Framework>,
  enforce: readonly string[],
): { days: number; by?: string } {
  let floor: { days: number; by?: string } = { days: 0 };
  for (const id of enforce) {
    const f = registry.get(id);
    if (!f) throw new FrameworkError(`[compliance] enforce names ${id}, which is not a framework`);
    for (const c of f.controls)
      if (c.check.kind === "retention-minimum" && c.check.minDays > floor.days)
        floor = { days: c.check.minDays, by: `${f.id} control ${c.id}` };
  }
  return floor;
}

/**
 * The registry a deployment serves (shipped plus custom) and its retention floor; refuses
 * `audit_retention_days` below the floor, so a deployment held to HIPAA cannot start with less
 * than six years.
 */
export function complianceSetup(
  settings: { retentionDays: number; enforce: readonly string[] },
  custom: readonly Framework[],
): { frameworks: Map<string, Framework>; retentionFloorDays: number } {
  if (custom.length > MAX_CUSTOM_FRAMEWORKS)
    throw new FrameworkError(
      `${custom.length} custom frameworks, at most ${MAX_CUSTOM_FRAMEWORKS}`,
    );
  const registry = frameworkRegistry(custom);
  const floor = retentionFloor(registry, settings.enforce);
  if (settings.retentionDays < floor.days)
    throw new FrameworkError(
      `audit_retention_days = ${settings.retentionDays} is below ${floor.days}, the minimum of ${floor.by} ([compliance] enforce)`,
    );
  return { frameworks: registry, retentionFloorDays: floor.days };
}
