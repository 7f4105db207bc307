// Shared OpenAPI pieces: the problem+json error body, and the response entries routes reuse.
import { z } from "@hono/zod-openapi";

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .openapi("Problem");

const descriptions: Record<number, string> = {
  400: "invalid request (validation, invalid-json, policy-invalid, reserved-attribute)",
  401: "authentication failed (auth-required, key-unknown, signature-invalid, replay)",
  403: "outside the key's role (forbidden) or denied by policy (policy-denied)",
  404: "not found",
  409: "conflict",
  413: "body too large",
  429: "over a quota (rate-limited), with Retry-After",
  503: "a dependency is unavailable",
};

export function problemResponses<S extends number>(...statuses: S[]) {
  const out = {} as Record<
    S,
    {
      description: string;
      content: { "application/problem+json": { schema: typeof problemSchema } };
    }
  >;
  for (const s of statuses) {
    out[s] = {
      description: descriptions[s] ?? "error",
      content: { "application/problem+json": { schema: problemSchema } },
    };
  }
  return out;
}
