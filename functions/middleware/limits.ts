// Quotas per caller (docs/governance.md "Quotas, rate limits and fair scheduling"): after
// authentication every request takes one token from its key's and its subject's `requests`
// buckets; routes take from the other buckets (a batch evaluation one token per decision) through
// `charge`. Over a limit → 429 `rate-limited` with Retry-After, audited as `limit.exceeded`
// once per key and limit per window (AuditWindows), never once per refused request.
import type { Context, MiddlewareHandler } from "hono";
import {
  LimitExceededError,
  type LimitKind,
  type Limits,
  type LimitsConfig,
  type RateKind,
  type RateLimiter,
  resolveLimits,
  ruleFor,
} from "../../shared/limits";
import type { AuditWindows } from "../audit-windows";
import { Problem, rateLimited } from "../problem";
import type { AppEnv } from "../router";

export interface CallerLimits {
  readonly values: Limits;
  /** Takes `cost` from the caller's `kind` buckets (its key's and its subject's), or throws 429. */
  charge(kind: RateKind, cost: number): Promise<void>;
  /** A refusal decided elsewhere (a full job queue): audited like a bucket's; throw the result. */
  refuse(kind: LimitKind, retryAfterMs: number, detail: string): Promise<Problem>;
}

export interface RateLimitDeps {
  limiter: RateLimiter;
  config: LimitsConfig;
  windows: AuditWindows;
  /** Called with each refusal's limit (metrics count them; the audit trail aggregates them). */
  onRefused?: (kind: LimitKind) => void;
}

const names: Record<LimitKind, string> = {
  requests: "requests per second",
  evaluations: "evaluations per second",
  audit_appends: "audit appends per second",
  queued_jobs: "unfinished jobs",
  running_jobs: "running jobs",
};

/** Keeps `p` running after the response: waitUntil on workerd, a plain promise on Node. */
export function inBackground(c: Context, p: Promise<unknown>): void {
  const settled = p.catch(() => undefined);
  try {
    c.executionCtx.waitUntil(settled);
  } catch {
    // Node has no ExecutionContext: the promise runs on by itself.
  }
}

export function rateLimits(deps: RateLimitDeps): MiddlewareHandler<AppEnv> {
  const { limiter, config, windows } = deps;
  return async (c, next) => {
    const kid = c.get("keyid");
    const subject = c.get("subject");
    if (!kid || !subject) throw new Error("rateLimits runs after authentication");
    const role = c.get("role");
    const values = resolveLimits(config, role, c.get("keyLimits"));

    const refuse = async (kind: LimitKind, retryAfterMs: number, detail: string) => {
      deps.onRefused?.(kind);
      const first = windows.record({
        key: `${kid}\u0000${kind}`,
        requestId: c.get("requestId"),
        first: {
          eventType: "limit.exceeded",
          agentId: subject,
          details: {
            kid,
            subject,
            role: role ?? null,
            limit: kind,
            detail,
            retryAfterMs,
            method: c.req.method,
            path: c.req.path,
            requestId: c.get("requestId"),
          },
        },
        summary: {
          eventType: "limit.exceeded",
          agentId: subject,
          details: { kid, subject, limit: kind },
        },
      });
      if (first) {
        inBackground(c, windows.flushLater());
        await first;
      }
      return rateLimited(detail, retryAfterMs);
    };

    const charge = async (kind: RateKind, cost: number) => {
      const rule = ruleFor(values, kind, config.burst_seconds);
      const wholeBucketMs = Math.ceil((rule.burst * 1000) / rule.rate);
      if (cost > rule.burst) {
        throw await refuse(
          kind,
          wholeBucketMs,
          `this request costs ${cost} ${names[kind]}; key ${kid} may spend at most ${rule.burst} at once (${rule.rate}/s): split it`,
        );
      }
      let out: Awaited<ReturnType<RateLimiter["take"]>>;
      try {
        out = await limiter.take(
          subject,
          [
            { key: `${kind}:key:${kid}`, ...rule },
            { key: `${kind}:subject`, ...rule },
          ],
          cost,
        );
      } catch (e) {
        // Fail closed: an unreachable limiter allows nothing.
        throw new Problem(503, "unavailable", "Rate limiter unavailable", (e as Error).message);
      }
      if (!out.allowed) {
        const whose = out.limitedBy?.endsWith(":subject") ? `subject ${subject}` : `key ${kid}`;
        throw await refuse(
          kind,
          out.retryAfterMs,
          `${whose} is over its ${names[kind]} (${rule.rate}/s, burst ${rule.burst})`,
        );
      }
    };

    c.set("limits", { values, charge, refuse });
    await charge("requests", 1);
    await next();
  };
}

/** The caller's limits in a route: from the middleware, or the config's for the caller's role. */
export function callerLimits(c: Context<AppEnv>, config: LimitsConfig): Limits {
  return c.get("limits")?.values ?? resolveLimits(config, c.get("role"), c.get("keyLimits"));
}

/**
 * A 429 for a limit a store enforced (a full job queue), audited like a bucket's refusal when the
 * rateLimits middleware is in front; undefined when `e` is not a limit.
 */
export async function limitProblem(c: Context<AppEnv>, e: unknown): Promise<Problem | undefined> {
  if (!(e instanceof LimitExceededError)) return undefined;
  const limits = c.get("limits");
  return limits
    ? limits.refuse(e.limit, e.retryAfterMs, e.message)
    : rateLimited(e.message, e.retryAfterMs);
}

/** Takes from the caller's `kind` buckets; fails closed when the app has no rateLimits in front. */
export async function charge(c: Context<AppEnv>, kind: RateKind, cost: number): Promise<void> {
  const limits = c.get("limits");
  if (!limits) throw new Error(`no rate limits in front of ${c.req.path}`);
  await limits.charge(kind, cost);
}
