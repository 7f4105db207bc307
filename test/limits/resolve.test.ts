// Which quotas hold for a caller: [limits] defaults, then [limits.roles.<role>], then the key
// record's limits; loaded from TOML or SIGIL_LIMITS_* like every other table.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../shared/config";
import { resolveLimits, ruleFor } from "../../shared/limits";

describe("resolveLimits", () => {
  const cfg = loadConfig({
    toml: {
      path: "sigil.toml",
      text: `[limits]
requests_per_second = 50
queued_jobs = 7

[limits.roles.worker]
requests_per_second = 500
running_jobs = 2
`,
    },
  }).limits;

  it("defaults, then the role's table, then the key record", () => {
    expect(resolveLimits(cfg, "agent")).toMatchObject({
      requestsPerSecond: 50,
      evaluationsPerSecond: 1000,
      queuedJobs: 7,
      runningJobs: 4,
    });
    expect(resolveLimits(cfg, "worker")).toMatchObject({
      requestsPerSecond: 500,
      runningJobs: 2,
      queuedJobs: 7,
    });
    expect(resolveLimits(cfg, "worker", { requestsPerSecond: 5, queuedJobs: 1 })).toMatchObject({
      requestsPerSecond: 5,
      runningJobs: 2,
      queuedJobs: 1,
    });
  });

  it("a bucket holds burst_seconds of its rate, at least one token", () => {
    const l = resolveLimits(cfg, "agent", { evaluationsPerSecond: 0.1 });
    expect(ruleFor(l, "requests", 2)).toEqual({ rate: 50, burst: 100 });
    expect(ruleFor(l, "evaluations", 2)).toEqual({ rate: 0.1, burst: 1 });
  });

  it("the defaults let a full batch through and the gateway carry the edge's job traffic", () => {
    const d = loadConfig({}).limits;
    const agent = resolveLimits(d, "agent");
    expect(ruleFor(agent, "evaluations", d.burst_seconds).burst).toBeGreaterThanOrEqual(1000);
    expect(resolveLimits(d, "gateway").requestsPerSecond).toBeGreaterThan(agent.requestsPerSecond);
  });

  it("environment overrides follow SIGIL_<TABLE>_<KEY>; bad values stop start-up", () => {
    const c = loadConfig({
      env: {
        SIGIL_LIMITS_REQUESTS_PER_SECOND: "12.5",
        SIGIL_LIMITS_ROLES: '{"agent":{"evaluations_per_second":3}}',
      },
    }).limits;
    expect(resolveLimits(c, "agent")).toMatchObject({
      requestsPerSecond: 12.5,
      evaluationsPerSecond: 3,
    });
    for (const env of [
      { SIGIL_LIMITS_REQUESTS_PER_SECOND: "0" },
      { SIGIL_LIMITS_RUNNING_JOBS: "1.5" },
      { SIGIL_LIMITS_ROLES: '{"nobody":{}}' },
      { SIGIL_LIMITS_ROLES: '{"agent":{"requests":1}}' },
    ])
      expect(() => loadConfig({ env })).toThrow(ConfigError);
  });
});
