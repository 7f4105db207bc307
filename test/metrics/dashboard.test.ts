// infra/grafana/sigil.json (docs/operating.md "Dashboard") queries only series the API and the
// worker expose, under the names they expose them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prometheusApiMetrics } from "../../functions/node/metrics";
import { prometheusWorkerMetrics } from "../../worker/jobs/metrics";
import { exposition } from "../support/prometheus";
import { repoRoot } from "../support/vectors";

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

describe("the Grafana dashboard", () => {
  it("every series a panel queries exists in an exposition", async () => {
    const api = prometheusApiMetrics();
    const worker = prometheusWorkerMetrics();
    const names = new Set(
      [
        ...exposition((await api.expose()).body).families,
        ...exposition((await worker.expose()).body).families,
      ].map((f) => f.name),
    );
    const dash = JSON.parse(readFileSync(join(repoRoot, "infra/grafana/sigil.json"), "utf8")) as {
      panels: Panel[];
    };
    const queried = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(queried.length).toBeGreaterThan(10);
    for (const expr of queried)
      for (const [, series] of expr.matchAll(/\b(sigil_[a-z_]+?)(?:_bucket)?\{/g))
        expect(names, `${series} in ${expr}`).toContain(series);
  });
});
