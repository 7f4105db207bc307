// Incident response's webhook channels (docs/incidents.md "Response"): `[incidents] alert_webhooks`
// and `emergency_webhooks`, delivered and signed exactly as the approval webhooks are (RFC 9421
// with the service key, tag "sigil-webhook", a bounded queue per URL, retries with backoff), each
// channel its own set of queues so a dead alert receiver never delays an emergency one.
import type { Signer } from "../shared/crypto";
import type { Logger } from "../shared/log";
import { ApprovalWebhooks } from "./approval-webhooks";

export interface IncidentWebhooks {
  publish(channel: "alert" | "emergency", body: Record<string, unknown>): void;
  idle(): Promise<void>;
}

export function incidentWebhooks(o: {
  alert: readonly string[];
  emergency: readonly string[];
  signer: Signer;
  log: Logger;
  attempts?: number;
  queueSize?: number;
  fetch?: typeof fetch;
  baseDelayMs?: number;
}): IncidentWebhooks {
  const make = (urls: readonly string[]) =>
    new ApprovalWebhooks({
      urls,
      signer: o.signer,
      log: o.log,
      attempts: o.attempts ?? 5,
      queueSize: o.queueSize ?? 1000,
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.baseDelayMs !== undefined ? { baseDelayMs: o.baseDelayMs } : {}),
    });
  const lanes = { alert: make(o.alert), emergency: make(o.emergency) };
  return {
    publish(channel, body) {
      const { type, incident } = body;
      lanes[channel].publish({
        type: typeof type === "string" ? type : `incident.${channel}`,
        incident,
      });
    },
    async idle() {
      await Promise.all([lanes.alert.idle(), lanes.emergency.idle()]);
    },
  };
}
