// ReportStore over ReportsObject (one object for the deployment). What comes back is parsed as a
// report again; anything else is absent, as on Redis (a report verifies on its own anyway).
import {
  type ComplianceReport,
  ComplianceReportSchema,
  REPORT_RETENTION_DAYS,
  type ReportStore,
} from "../../../shared/compliance";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { ReportsObject } from "./object";

export class DoReportStore implements ReportStore {
  constructor(
    private readonly object: StubSource<ReportsObject>,
    private readonly now: () => number = Date.now,
  ) {}

  async put(report: ComplianceReport): Promise<void> {
    const valid = ComplianceReportSchema.parse(report);
    unwrap(
      await this.object().put(
        valid.reportId,
        JSON.stringify(valid),
        this.now() + REPORT_RETENTION_DAYS * 86_400_000,
      ),
    );
  }

  async get(reportId: string): Promise<ComplianceReport | undefined> {
    const v = unwrap(await this.object().get(reportId));
    if (v === null) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      return undefined;
    }
    const r = ComplianceReportSchema.safeParse(raw);
    return r.success && r.data.reportId === reportId ? r.data : undefined;
  }
}
