// Enforcement of quarantines (docs/incidents.md "Quarantine"): right after authentication, a
// request signed by a quarantined key, or by any key of a quarantined subject, is 403
// `quarantined`, whatever its route or role. The check reads a per-process cache that a place or
// lift drops at once where it is made and, by the invalidation bus, where its announcement arrives;
// its TTL (`[auth] key_cache_ms`) bounds a lost announcement. A store that cannot answer fails the
// request (503), never lets it through.
import type { MiddlewareHandler } from "hono";
import type { QuarantineService } from "../../shared/quarantine";
import type { AuditWindows } from "../audit-windows";
import { Problem } from "../problem";
import type { AppEnv } from "../router";
import { inBackground } from "./limits";

export function refuseQuarantined(
  quarantine: QuarantineService,
  windows: AuditWindows,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const kid = c.get("keyid");
    if (kid === undefined) return next();
    const subject = c.get("subject");
    const r = await quarantine
      .forRequest({ kid, subject: subject === undefined || subject === "" ? null : subject })
      .catch((e: unknown) => {
        throw new Problem(503, "unavailable", "Quarantine store unavailable", (e as Error).message);
      });
    if (!r) return next();
    // Audited like auth failures: the first refusal per key and window at once, the rest counted.
    const first = windows.record({
      key: `quarantined\u0000${kid}`,
      requestId: c.get("requestId"),
      first: {
        eventType: "quarantine.refused",
        agentId: subject || kid,
        details: { kid, quarantineId: r.id, method: c.req.method, path: c.req.path },
      },
      summary: {
        eventType: "quarantine.refused",
        agentId: subject || kid,
        details: { kid, quarantineId: r.id },
      },
    });
    if (first) {
      inBackground(c, windows.flushLater());
      await first;
    }
    throw new Problem(
      403,
      "quarantined",
      "Quarantined",
      `${r.target.kind === "key" ? "this key" : "this key's subject"} is quarantined (${r.id})`,
      undefined,
      { quarantineId: r.id },
    );
  };
}
