// GET /health: each dependency's check; 200 only when every required one is up.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";

export interface HealthCheckResult {
  ok: boolean;
  detail?: string;
}
export interface HealthCheck {
  name: string;
  required: boolean;
  check(): Promise<HealthCheckResult>;
}

const checkSchema = z.object({
  name: z.string(),
  ok: z.boolean(),
  required: z.boolean(),
  detail: z.string().optional(),
});
const healthSchema = z.object({
  status: z.enum(["ok", "degraded", "down"]),
  checks: z.array(checkSchema),
});

const route = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness and dependency checks (unauthenticated)",
  responses: {
    200: {
      description: "every required dependency is up",
      content: { "application/json": { schema: healthSchema } },
    },
    503: {
      description: "a required dependency is down",
      content: { "application/json": { schema: healthSchema } },
    },
  },
});

async function runCheck(h: HealthCheck, timeoutMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<HealthCheckResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    const r = await Promise.race([h.check(), timeout]);
    return { name: h.name, required: h.required, ...r };
  } catch (e) {
    return {
      name: h.name,
      required: h.required,
      ok: false,
      detail: e instanceof Error ? e.message : String(e),
    };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(checks: HealthCheck[], timeoutMs = 3000) {
  return new OpenAPIHono().openapi(route, async (c) => {
    const results = await Promise.all(checks.map((h) => runCheck(h, timeoutMs)));
    const requiredDown = results.some((r) => r.required && !r.ok);
    const anyDown = results.some((r) => !r.ok);
    const status = requiredDown ? "down" : anyDown ? "degraded" : "ok";
    return c.json({ status, checks: results }, requiredDown ? 503 : 200);
  });
}
