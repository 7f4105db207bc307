// Overview (docs/console.md): health, request and decision counts, pending approvals, the audit
// trail's signed size. Incidents join here when their API exists.
import { signedText, sumMetrics } from "../api";
import type { PageProps } from "../main";
import { ErrorBox, Mark, Title, useLoad } from "../ui";

const COUNTERS = [
  ["sigil_http_requests_total", "Requests"],
  ["sigil_policy_decisions_total", "Policy decisions"],
  ["sigil_audit_appends_total", "Audit events appended"],
  ["sigil_auth_failures_total", "Authentication failures"],
  ["sigil_jobs_submitted_total", "Jobs submitted"],
] as const;

export function OverviewPage({ sigil, signer }: PageProps) {
  const health = useLoad(() => sigil.health());
  const metrics = useLoad(async () =>
    sumMetrics(
      await signedText(signer, "/metrics"),
      COUNTERS.map((c) => c[0]),
    ),
  );
  const pending = useLoad(() => sigil.approvals.list({ status: "pending", limit: 100 }));
  const checkpoint = useLoad(() => sigil.audit.checkpoint());
  const checks = (health.value?.checks ?? []) as {
    name: string;
    ok: boolean;
    required: boolean;
    detail?: string;
  }[];
  return (
    <>
      <Title>Overview</Title>
      <section aria-labelledby="h-health">
        <h2 id="h-health">
          Health: <span data-testid="health-status">{health.value?.status ?? "…"}</span>
        </h2>
        <ErrorBox error={health.error} />
        <table>
          <caption class="sr-only">Dependency checks</caption>
          <thead>
            <tr>
              <th scope="col">Check</th>
              <th scope="col">Status</th>
              <th scope="col">Required</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {checks.map((c) => (
              <tr key={c.name}>
                <td>{c.name}</td>
                <td>
                  <Mark ok={c.ok} label={c.ok ? "up" : "down"} />
                </td>
                <td>{c.required ? "yes" : "no"}</td>
                <td>{c.detail ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="h-counts">
        <h2 id="h-counts">Since this API process started</h2>
        <ErrorBox error={metrics.error} />
        <dl class="tiles">
          {COUNTERS.map(([name, label]) => (
            <div key={name}>
              <dt>{label}</dt>
              <dd>{metrics.value ? (metrics.value[name] ?? 0) : "…"}</dd>
            </div>
          ))}
          <div>
            <dt>Pending approvals</dt>
            <dd>
              <a href="#/approvals">{pending.value ? pending.value.approvals.length : "…"}</a>
            </dd>
          </div>
          <div>
            <dt>Audit events in the signed tree</dt>
            <dd>
              <a href="#/audit">{checkpoint.value ? checkpoint.value.treeSize : "…"}</a>
            </dd>
          </div>
        </dl>
        <ErrorBox error={pending.error ?? checkpoint.error} />
      </section>
    </>
  );
}
