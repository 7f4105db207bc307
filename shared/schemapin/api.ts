// Input schemas for the tool endpoints (the lead mounts them on routes). Sizes are bounded so
// canonicalization and review cost stay small whatever a client sends.
import { z } from "zod";
import { isJsonValue } from "../encoding";
import { MAX_PEM_LENGTH } from "./keys";
import { MAX_SIGNATURE_B64 } from "./signatures";

export const TOOL_SCHEMA_MAX_BYTES = 64 * 1024;
export const TOOL_SCHEMA_MAX_DEPTH = 32;

function jsonDepth(v: unknown, depth = 0): number {
  if (depth > TOOL_SCHEMA_MAX_DEPTH) return depth;
  if (v === null || typeof v !== "object") return depth;
  let max = depth;
  for (const x of Object.values(v as Record<string, unknown>)) {
    max = Math.max(max, jsonDepth(x, depth + 1));
    if (max > TOOL_SCHEMA_MAX_DEPTH) break;
  }
  return max;
}

/** A tool schema: a JSON object, at most 64 KiB serialized and 32 levels deep. */
export const toolSchemaSchema = z
  .record(z.string(), z.unknown())
  .refine((v) => isJsonValue(v, TOOL_SCHEMA_MAX_DEPTH + 1), {
    message: "schema must be plain JSON",
  })
  .refine((v) => jsonDepth(v) <= TOOL_SCHEMA_MAX_DEPTH, {
    message: `schema nests deeper than ${TOOL_SCHEMA_MAX_DEPTH}`,
  })
  .refine((v) => JSON.stringify(v).length <= TOOL_SCHEMA_MAX_BYTES, {
    message: `schema larger than ${TOOL_SCHEMA_MAX_BYTES} bytes`,
  });

/** MCP tool names plus a few separators; never "@" (key separator) or "*" (domain-wide). */
export const toolIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, "tool id: letters, digits and . _ : / -");

export const domainSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.-]+$/, "domain: a DNS hostname");

export const verifyToolRequestSchema = z.strictObject({
  toolId: toolIdSchema,
  domain: domainSchema,
  schema: toolSchemaSchema,
  signature: z.string().min(1).max(MAX_SIGNATURE_B64),
  /** Defaults to the algorithm of the provider's key; a mismatch is signature_invalid. */
  algorithm: z.enum(["ES256", "Ed25519"]).optional(),
  /** SchemaPin v1.4: absent or "schemapin-v1"; anything else is canonicalization_unsupported. */
  canonicalization: z.string().max(64).optional(),
});
export type VerifyToolRequest = z.infer<typeof verifyToolRequestSchema>;

export const putPinRequestSchema = z.strictObject({
  publicKeyPem: z.string().min(1).max(MAX_PEM_LENGTH),
  /** Absent: the pin covers every tool of the domain. */
  toolId: toolIdSchema.optional(),
});
export type PutPinRequest = z.infer<typeof putPinRequestSchema>;

export const reviewToolRequestSchema = z.strictObject({ schema: toolSchemaSchema });
export type ReviewToolRequest = z.infer<typeof reviewToolRequestSchema>;
