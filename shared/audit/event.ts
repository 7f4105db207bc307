// The audit event: its schema, hash, signing payload and Merkle leaf data (docs/audit.md "Event").
// All three byte strings are RFC 8785 canonical JSON; they are assembled from the canonical JSON
// of each member (keys are fixed ASCII names, so their JCS order is fixed) to canonicalize each
// value once instead of three times per event.
import { z } from "zod";
import { canonicalJson, isJsonValue, sha256Hex, utf8 } from "../encoding";

export const GENESIS_HASH = "0".repeat(64);
export const DEFAULT_CHAIN = "default";
/** Bound on one event's details (canonical JSON, UTF-16 code units), so a batch stays bounded. */
export const MAX_DETAILS_CHARS = 64 * 1024;

const EVENT_TYPE = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;
const HEX64 = /^[0-9a-f]{64}$/;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ED25519_SIG_B64URL = /^[A-Za-z0-9_-]{85}[AQgw]$/;

export const ChainIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "invalid chain id");

export const AuditTimestampSchema = z
  .string()
  .regex(RFC3339_MS_UTC, "timestamp must be RFC 3339 UTC with milliseconds")
  .refine((s) => {
    const t = Date.parse(s);
    return Number.isFinite(t) && new Date(t).toISOString() === s;
  }, "timestamp is not a real instant");

// Not z.json(): it is recursive, which the OpenAPI generator cannot walk; isJsonValue checks the
// same.
const DetailsSchema = z
  .record(z.string(), z.unknown())
  .refine((d) => isJsonValue(d), "details must be plain JSON")
  .refine((d) => JSON.stringify(d).length <= MAX_DETAILS_CHARS, "details too large");

/** Body of POST /v1/audit/events. */
export const AuditAppendInputSchema = z.strictObject({
  eventType: z.string().max(128).regex(EVENT_TYPE, "eventType must look like `area.action`"),
  agentId: z.string().min(1).max(256).optional(),
  details: DetailsSchema,
});
export type AuditAppendInput = z.infer<typeof AuditAppendInputSchema>;

/**
 * Whether a client may append this event type (POST /v1/audit/events, docs/http-api.md "Audit"): only
 * what an agent runtime observes itself. An allow-list: every other type (`auth.*`, `policy.*`,
 * `security.*`, `sandbox.*`, `incident.*`, `tool.verified`, ... and any type added later) is
 * written by Sigil alone, so a client cannot forge a record of what Sigil saw.
 */
export function isClientEventType(eventType: string): boolean {
  return (
    eventType.startsWith("agent.") ||
    eventType.startsWith("app.") ||
    eventType === "tool.invoked" ||
    eventType === "message.routed" ||
    eventType === "resource.allocated"
  );
}

export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * An event's severity (incident response input): only Sigil's own `security.event` entries have
 * one, set by their writer. Every other event has none, whatever its details say; in particular a
 * `severity` a client puts in the details of a type it may append is never taken as one.
 */
export function eventSeverity(e: Pick<AuditEvent, "eventType" | "details">): Severity | undefined {
  if (e.eventType !== "security.event") return undefined;
  const s = e.details.severity;
  return SEVERITIES.find((x) => x === s);
}

/** A stored, signed event. Strict: an unknown member is tampering too. */
export const AuditEventSchema = z.strictObject({
  chain: ChainIdSchema,
  index: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  eventId: z.string().regex(UUID_V7, "eventId must be a lowercase UUIDv7"),
  timestamp: AuditTimestampSchema,
  agentId: z.string().min(1).max(256),
  eventType: z.string().max(128).regex(EVENT_TYPE),
  details: z.record(z.string(), z.unknown()),
  previousHash: z.string().regex(HEX64),
  eventHash: z.string().regex(HEX64),
  kid: z.string().min(1).max(256),
  signature: z.string().regex(ED25519_SIG_B64URL, "signature must be base64url Ed25519"),
});
export type AuditEvent = z.infer<typeof AuditEventSchema>;
export type AuditEventField = keyof AuditEvent;

/** Every member, in JCS (sorted) order. */
export const EVENT_FIELDS = [
  "agentId",
  "chain",
  "details",
  "eventHash",
  "eventId",
  "eventType",
  "index",
  "kid",
  "previousHash",
  "signature",
  "timestamp",
] as const satisfies readonly AuditEventField[];

/** The members covered by eventHash (docs/audit.md: every field above eventHash). */
export const HASHED_FIELDS = [
  "agentId",
  "chain",
  "details",
  "eventId",
  "eventType",
  "index",
  "previousHash",
  "timestamp",
] as const satisfies readonly AuditEventField[];

const SIGNED_FIELDS = [
  "agentId",
  "chain",
  "details",
  "eventHash",
  "eventId",
  "eventType",
  "index",
  "previousHash",
  "timestamp",
] as const satisfies readonly AuditEventField[];

export type EventParts = Partial<Record<AuditEventField, string>>;

// RFC 8785 serializes strings exactly as JSON.stringify does, and safe integers as their decimal
// form; only `details` needs the full canonicalizer. (Hot path: sealing and verifying.)
function memberJson(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  return canonicalJson(v);
}

/** Canonical JSON of each member present. */
export function eventParts(e: Partial<AuditEvent>): EventParts {
  const parts: EventParts = {};
  for (const f of EVENT_FIELDS) {
    const v = e[f];
    if (v !== undefined) parts[f] = memberJson(v);
  }
  return parts;
}

export type EventIssue = { field?: AuditEventField; message: string };

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Fast structural check of a stored event, equivalent to AuditEventSchema (which the tests hold
 * it to) but without zod's per-call overhead: verification runs it once per event.
 */
export function checkEvent(v: unknown): { event: AuditEvent } | { issue: EventIssue } {
  if (!isObj(v)) return { issue: { message: "event is not an object" } };
  for (const k of Object.keys(v)) {
    if (!(EVENT_FIELDS as readonly string[]).includes(k))
      return { issue: { message: `unknown member ${k}` } };
  }
  const str = (f: AuditEventField, re: RegExp | null, max = 256): EventIssue | undefined => {
    const x = v[f];
    if (typeof x !== "string" || x.length === 0 || x.length > max || (re && !re.test(x))) {
      return { field: f, message: `invalid ${f}` };
    }
    return undefined;
  };
  const issue =
    str("chain", /^[A-Za-z0-9._-]{1,64}$/) ??
    (typeof v.index === "number" && Number.isSafeInteger(v.index) && v.index >= 0
      ? undefined
      : { field: "index" as const, message: "invalid index" }) ??
    str("eventId", UUID_V7) ??
    str("timestamp", RFC3339_MS_UTC) ??
    (new Date(Date.parse(v.timestamp as string)).toISOString?.() === v.timestamp
      ? undefined
      : { field: "timestamp" as const, message: "timestamp is not a real instant" }) ??
    str("agentId", null) ??
    str("eventType", EVENT_TYPE, 128) ??
    (isObj(v.details)
      ? undefined
      : { field: "details" as const, message: "details must be an object" }) ??
    str("previousHash", HEX64) ??
    str("eventHash", HEX64) ??
    str("kid", null) ??
    str("signature", ED25519_SIG_B64URL);
  return issue ? { issue } : { event: v as AuditEvent };
}

function assemble(parts: EventParts, fields: readonly AuditEventField[]): string {
  let s = "{";
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = parts[f];
    if (v === undefined) throw new TypeError(`event member ${f} missing`);
    s += `${i === 0 ? "" : ","}"${f}":${v}`;
  }
  return `${s}}`;
}

/** RFC 8785 canonical JSON of the hashed members. */
export const hashedJson = (parts: EventParts): string => assemble(parts, HASHED_FIELDS);
/** hex SHA-256 of the hashed members' canonical JSON. */
export const computeEventHash = (parts: EventParts): string => sha256Hex(hashedJson(parts));
/** What the signature covers: every hashed member plus eventHash. */
export const signingBytes = (parts: EventParts): Uint8Array => utf8(assemble(parts, SIGNED_FIELDS));
/** Canonical JSON of the whole signed event: the stored form and the Merkle leaf data. */
export const eventJson = (parts: EventParts): string => assemble(parts, EVENT_FIELDS);

// FNV-1a over UTF-16 code units: cheap, and only a diagnostic (it names the member that changed);
// integrity itself rests on eventHash, the signature and the Merkle tree.
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const HEX = "0123456789abcdef";

/** Length of a fieldSums string: 8 hex digits per member. */
export const FIELD_SUMS_LENGTH = EVENT_FIELDS.length * 8;

/** One 8-hex checksum per member in EVENT_FIELDS order, stored beside the event (unsigned). */
export function fieldSums(parts: EventParts): string {
  let s = "";
  for (const f of EVENT_FIELDS) {
    const h = fnv1a(parts[f] ?? "");
    for (let shift = 28; shift >= 0; shift -= 4) s += HEX[(h >>> shift) & 15];
  }
  return s;
}

/** Members whose checksum differs from the stored one (empty if sums are absent or garbled). */
export function changedFields(parts: EventParts, stored: string | undefined): AuditEventField[] {
  if (stored === undefined || stored.length !== FIELD_SUMS_LENGTH) return [];
  const now = fieldSums(parts);
  const out: AuditEventField[] = [];
  for (let i = 0; i < EVENT_FIELDS.length; i++) {
    if (now.slice(i * 8, i * 8 + 8) !== stored.slice(i * 8, i * 8 + 8)) out.push(EVENT_FIELDS[i]!);
  }
  return out;
}
