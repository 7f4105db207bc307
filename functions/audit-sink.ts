// How routes record things: one `audit()` call per security-relevant event, and security events
// (incident response input) as `security.event` entries with a severity.
import type { NonceClaim, Severity } from "../shared/audit";

export type { Severity } from "../shared/audit";

export interface AuditInput {
  eventType: string;
  agentId: string;
  details: Record<string, unknown>;
}

export interface AuditReceipt {
  eventId: string;
  index: number;
}

/** `nonce`: reserve the request's nonce atomically with the event (the evaluate route). */
export type AuditFn = (
  event: AuditInput,
  options?: { nonce?: NonceClaim },
) => Promise<AuditReceipt>;

export function securityEvent(
  audit: AuditFn,
  agentId: string,
  category: string,
  severity: Severity,
  description: string,
  details: Record<string, unknown> = {},
  options: { nonce?: NonceClaim } = {},
): Promise<AuditReceipt> {
  return audit(
    {
      eventType: "security.event",
      agentId,
      // Sigil's own category and severity win over anything of the same name in `details`.
      details: { ...details, category, severity, description },
    },
    options,
  );
}
