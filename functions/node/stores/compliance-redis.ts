// Compliance reports in Redis (docs/compliance.md "Reports"), shared by every API process. Kept for
// REPORT_RETENTION_DAYS; a report is signed, so what Redis returns is checked by whoever verifies it.
import type { Redis } from "ioredis";
import {
  type ComplianceReport,
  ComplianceReportSchema,
  REPORT_RETENTION_DAYS,
  type ReportStore,
} from "../../../shared/compliance";

export class RedisReportStore implements ReportStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  private key(id: string): string {
    return `${this.prefix}:compliance:report:${id}`;
  }
  async put(report: ComplianceReport): Promise<void> {
    await this.redis.set(
      this.key(report.reportId),
      JSON.stringify(report),
      "PX",
      REPORT_RETENTION_DAYS * 86_400_000,
    );
  }
  async get(reportId: string): Promise<ComplianceReport | undefined> {
    const v = await this.redis.get(this.key(reportId));
    if (v === null) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      return undefined; // not a report: whoever wrote it was not this store
    }
    const r = ComplianceReportSchema.safeParse(raw);
    return r.success ? r.data : undefined;
  }
}
