// The Worker's environment: Durable Object bindings (names fixed in wrangler.toml) plus string vars
// and secrets (SIGIL_*, SYMBIONT_*; the same names as on Node).
import type { ApprovalsObject } from "./approvals/object";
import type { ArchiveObject } from "./audit/archive-object";
import type { AuditObject } from "./audit/object";
import type { ReportsObject } from "./compliance/object";
import type { IncidentsObject } from "./incidents/object";
import type { KeysObject } from "./keys/object";
import type { LimitsObject } from "./limits/object";
import type { PinsObject } from "./pins/object";
import type { PolicyObject } from "./policy/object";
import type { QuarantineObject } from "./quarantine/object";
import type { ReplayObject } from "./replay/object";
import type { DurableObjectNamespace } from "./runtime";

export interface EdgeBindings {
  /** One object ("keys"): key registry, encrypted private keys, the dev master secret. */
  SIGIL_KEYS: DurableObjectNamespace<KeysObject>;
  /** One object per request keyid: that key's nonces. */
  SIGIL_REPLAY: DurableObjectNamespace<ReplayObject>;
  /** One object ("policies"): the versioned policy store. */
  SIGIL_POLICIES: DurableObjectNamespace<PolicyObject>;
  /** One object per SchemaPin domain: its TOFU pins. */
  SIGIL_PINS: DurableObjectNamespace<PinsObject>;
  /** One object per audit chain: the chain's sequencer and storage. */
  SIGIL_AUDIT: DurableObjectNamespace<AuditObject>;
  /** One object per subject: the rate-limit buckets of the subject and its keys. */
  SIGIL_LIMITS: DurableObjectNamespace<LimitsObject>;
  /** One object ("approvals"): every approval record and its binding. */
  SIGIL_APPROVALS: DurableObjectNamespace<ApprovalsObject>;
  /** One object ("quarantine"): every quarantine record (docs/incidents.md "Quarantine"). */
  SIGIL_QUARANTINE: DurableObjectNamespace<QuarantineObject>;
  /** One object ("incidents"): incidents, the detection cursor, evidence, emergency mode. */
  SIGIL_INCIDENTS: DurableObjectNamespace<IncidentsObject>;
  /** One object ("reports"): compliance reports (docs/compliance.md "Reports"). */
  SIGIL_REPORTS: DurableObjectNamespace<ReportsObject>;
  /** One object ("archive"): audit prefixes archived before retention prunes them. */
  SIGIL_ARCHIVE: DurableObjectNamespace<ArchiveObject>;
}

/** The Workers static-assets binding (wrangler.toml [assets]): the web console's bundle. */
export interface AssetsFetcher {
  fetch(request: Request): Promise<Response>;
}

export type EdgeEnv = EdgeBindings & { ASSETS?: AssetsFetcher; [key: string]: unknown };

export { KEYS_OBJECT, POLICIES_OBJECT } from "./constants";

/** The string vars and secrets of the env (what loadConfig reads). */
export function stringVars(env: Record<string, unknown>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === "string") vars[k] = v;
  return vars;
}
