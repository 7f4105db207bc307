// The report as one self-contained HTML page (docs/compliance.md "Reports"): no scripts, no
// external assets, printable. Every value is escaped; the signed JSON stays the evidence.
import type { ComplianceReport } from "./report";

const esc = (s: string | number): string =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STATUS = { met: "Met", not_met: "Not met", not_applicable: "Not applicable" } as const;

export function renderReportHtml(r: ComplianceReport): string {
  const rows = r.controls
    .map(
      (
        c,
      ) => `<tr class="${esc(c.status)}"><td>${esc(c.id)}</td><td>${esc(c.reference)}</td><td>${esc(c.title)}</td>
<td>${esc(STATUS[c.status])}</td><td>${esc(c.evidence.count)} examined${c.evidence.eventIndexes.length ? `; cited ${c.evidence.eventIndexes.map(esc).join(", ")}` : ""}</td>
<td>${c.findings.length ? `<ul>${c.findings.map((f) => `<li>${esc(f)}</li>`).join("")}</ul>` : ""}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(r.frameworkName)} compliance report ${esc(r.period.from)} – ${esc(r.period.to)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3em .5em;vertical-align:top;text-align:left}
tr.not_met td:nth-child(4){color:#a00;font-weight:bold}tr.met td:nth-child(4){color:#060}
code{font-size:12px;word-break:break-all}
@media print{body{margin:0}a{color:inherit}}
</style></head><body>
<h1>${esc(r.frameworkName)} (${esc(r.framework)} ${esc(r.version)})</h1>
<p>Period ${esc(r.period.from)} to ${esc(r.period.to)} (log events ${esc(r.range.from)}–${esc(r.range.to)}), generated ${esc(r.generatedAt)}.
Score: <strong>${esc(r.score)} %</strong> of applicable controls met.</p>
<table><thead><tr><th>Control</th><th>Reference</th><th>Requirement</th><th>Status</th><th>Evidence</th><th>Findings</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Proof</h2>
<p>Report <code>${esc(r.reportId)}</code>, signed by <code>${esc(r.kid)}</code>: <code>${esc(r.signature)}</code>.
Checkpoint at tree size ${esc(r.checkpoint.treeSize)}, root <code>${esc(r.checkpoint.rootHash)}</code>; ${esc(r.evidence.length)} cited events with inclusion proofs.
Verify the JSON form offline with <code>sigil compliance verify</code>.</p>
<pre>${esc(r.checkpoint.note)}</pre>
</body></html>
`;
}
