// Where generated reports are kept for GET /v1/compliance/reports/:id. A report is signed and
// verifies on its own, so the store needs no integrity of its own: a changed report fails
// verifyReport.
import type { ComplianceReport } from "./report";

/** How long a stored report stays readable (Redis TTL, the ReportsObject's expiry). */
export const REPORT_RETENTION_DAYS = 400;

export interface ReportStore {
  put(report: ComplianceReport): Promise<void>;
  get(reportId: string): Promise<ComplianceReport | undefined>;
}

/** This process's memory, the most recent `max` reports (tests, the edge isolate). */
export class MemoryReportStore implements ReportStore {
  readonly #reports = new Map<string, ComplianceReport>();
  constructor(private readonly max = 1000) {}
  async put(report: ComplianceReport): Promise<void> {
    this.#reports.set(report.reportId, structuredClone(report));
    for (const k of this.#reports.keys()) {
      if (this.#reports.size <= this.max) break;
      this.#reports.delete(k);
    }
  }
  async get(reportId: string): Promise<ComplianceReport | undefined> {
    const r = this.#reports.get(reportId);
    return r ? structuredClone(r) : undefined;
  }
}
