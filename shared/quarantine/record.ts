// Quarantine records (docs/incidents.md "Quarantine"): one per isolation of a target. A record is
// active until lifted; lifting is the only change it ever sees, and a target has at most one
// active record, so `place` is idempotent on every adapter and every process.
import { z } from "zod";
import type { QuarantineRecord, QuarantineTarget } from "./types";

/** Non-empty, bounded, well-formed Unicode (a lone surrogate cannot be stored or audited). */
const wellFormed = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => s.isWellFormed(), "ill-formed Unicode (a lone surrogate)");

export const QuarantineIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "a lower-case UUID")
  .meta({ description: "quarantine id (UUID)" });

export const QuarantineTargetSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("subject"), subject: wellFormed(256) }),
  z.strictObject({ kind: z.literal("key"), kid: wellFormed(256) }),
  z.strictObject({ kind: z.literal("worker"), workerId: wellFormed(256) }),
]);

const at = z.iso.datetime();

export const QuarantineRecordSchema = z.strictObject({
  id: QuarantineIdSchema,
  target: QuarantineTargetSchema,
  reason: wellFormed(4096),
  incidentId: wellFormed(256).optional(),
  placedBy: wellFormed(256),
  placedAt: at,
  liftedAt: at.optional(),
  liftedBy: wellFormed(256).optional(),
  liftReason: wellFormed(4096).optional(),
});

/** The key one active quarantine per target is held under (the same on every adapter). */
export function targetKey(t: QuarantineTarget): string {
  switch (t.kind) {
    case "subject":
      return `subject:${t.subject}`;
    case "key":
      return `key:${t.kid}`;
    case "worker":
      return `worker:${t.workerId}`;
  }
}

export const isActive = (r: QuarantineRecord): boolean => r.liftedAt === undefined;

/** Parses a stored record, so a corrupt one is an error, never a lifted (or planted) quarantine. */
export function parseRecord(json: string): QuarantineRecord {
  const r = QuarantineRecordSchema.parse(JSON.parse(json));
  return dropUndefined(r);
}

/** The record as stored: no `undefined` fields (JSON drops them; equality in tests should too). */
export function dropUndefined(r: QuarantineRecord): QuarantineRecord {
  return JSON.parse(JSON.stringify(r)) as QuarantineRecord;
}
