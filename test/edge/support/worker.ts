// Test-only Worker entry: the production Durable Object classes (the audit and pins objects with
// test hooks, as an attacker with storage access would have) and a fetch handler that runs the
// production port adapters inside workerd, so the contract suites in Node drive the real
// Worker → DO RPC path. Bundled with esbuild and run by Miniflare (test/edge/support/workerd.ts).

import { DoApprovalStore } from "../../../functions/edge/approvals/adapter";
import { DoAuditLog } from "../../../functions/edge/audit/adapter";
import { AuditObject } from "../../../functions/edge/audit/object";
import { DoReportStore } from "../../../functions/edge/compliance/adapter";
import type { EdgeEnv } from "../../../functions/edge/env";
import { DoIncidentStore } from "../../../functions/edge/incidents/adapter";
import {
  DoKeyRegistry,
  DoSecretStore,
  DoSubjectKeyStore,
} from "../../../functions/edge/keys/adapter";
import { DoRateLimiter } from "../../../functions/edge/limits/adapter";
import { DoPinStore } from "../../../functions/edge/pins/adapter";
import { PinsObject } from "../../../functions/edge/pins/object";
import { DoPolicyStore } from "../../../functions/edge/policy/adapter";
import { DoQuarantineStore } from "../../../functions/edge/quarantine/adapter";
import { DoReplayCache } from "../../../functions/edge/replay/adapter";
import { describeError } from "../../../functions/edge/rpc";
import { stubFor, stubSource } from "../../../functions/edge/runtime";
import type { Signer } from "../../../shared/audit";
import { createSigner } from "../../../shared/crypto";
import { decode, encode } from "./codec";

export { ApprovalsObject } from "../../../functions/edge/approvals/object";
export { ArchiveObject } from "../../../functions/edge/audit/archive-object";
export { AuditObject } from "../../../functions/edge/audit/object";
export { ReportsObject } from "../../../functions/edge/compliance/object";
export { IncidentsObject } from "../../../functions/edge/incidents/object";
export { KeysObject } from "../../../functions/edge/keys/object";
export { LimitsObject } from "../../../functions/edge/limits/object";
export { PolicyObject } from "../../../functions/edge/policy/object";
export { QuarantineObject } from "../../../functions/edge/quarantine/object";
export { ReplayObject } from "../../../functions/edge/replay/object";

export class TestPinsObject extends PinsObject {
  corrupt(field: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO pins (field, value) VALUES (?, ?)", field, value);
  }
}

export class TestAuditObject extends AuditObject {
  #test: Signer | undefined;

  async useTestSigner(seed: Uint8Array, kid: string): Promise<void> {
    this.#test = await createSigner(seed, kid);
  }

  protected override async checkSigningKey(kid: string): Promise<void> {
    if (this.#test?.kid !== kid) throw new Error(`test audit object has no key ${kid}`);
  }

  protected override async loadSigner(): Promise<Signer> {
    if (!this.#test) throw new Error("no test signer");
    return this.#test;
  }

  rawRecord(index: number): { json: string; sums?: string } | undefined {
    const row = this.sql
      .exec<{ json: string; sums: string | null }>(
        "SELECT json, sums FROM events WHERE idx = ?",
        index,
      )
      .toArray()[0];
    return row ? (row.sums ? { json: row.json, sums: row.sums } : { json: row.json }) : undefined;
  }

  setRecord(index: number, r: { json: string; sums?: string } | null): void {
    if (r === null) this.sql.exec("DELETE FROM events WHERE idx = ?", index);
    else {
      this.sql.exec(
        "INSERT OR REPLACE INTO events (idx, json, sums, event_id) VALUES (?, ?, ?, ?)",
        index,
        r.json,
        r.sums ?? null,
        "tampered",
      );
    }
  }

  setNode(key: string, hash: Uint8Array): void {
    this.sql.exec("INSERT OR REPLACE INTO nodes (k, h) VALUES (?, ?)", key, hash);
  }
}

interface Call {
  port: string;
  name: string;
  method: string;
  args: unknown[];
  chain?: string;
  kid?: string;
}

/** The adapter (or raw stub) a call is for; its method is looked up by name with Reflect.get. */
function target(env: EdgeEnv, c: Call): object {
  switch (c.port) {
    case "keys":
      return new DoKeyRegistry(stubSource(env.SIGIL_KEYS, c.name));
    case "secrets":
      return new DoSecretStore(stubSource(env.SIGIL_KEYS, c.name));
    case "subjects":
      return new DoSubjectKeyStore(stubSource(env.SIGIL_KEYS, c.name));
    case "replay":
      return new DoReplayCache(env.SIGIL_REPLAY, `${c.name}:`);
    case "policy":
      return new DoPolicyStore(stubSource(env.SIGIL_POLICIES, c.name));
    case "limits":
      return new DoRateLimiter(env.SIGIL_LIMITS, `${c.name}:`);
    case "approvals":
      return new DoApprovalStore(stubSource(env.SIGIL_APPROVALS, c.name));
    case "quarantine":
      return new DoQuarantineStore(stubSource(env.SIGIL_QUARANTINE, c.name));
    case "incidents":
      return new DoIncidentStore(stubSource(env.SIGIL_INCIDENTS, c.name));
    case "reports":
      return new DoReportStore(stubSource(env.SIGIL_REPORTS, c.name));
    case "archive":
      return stubFor(env.SIGIL_ARCHIVE, c.name);
    case "reports-hook":
      return stubFor(env.SIGIL_REPORTS, c.name);
    case "pins":
      return new DoPinStore(env.SIGIL_PINS, `${c.name}:`);
    case "pins-hook":
      return stubFor(env.SIGIL_PINS, c.name);
    case "audit":
      return new DoAuditLog({
        object: stubSource(env.SIGIL_AUDIT, c.name),
        chain: c.chain ?? "default",
        kid: c.kid ?? "",
      });
    case "audit-prod":
      // The production AuditObject: signs with a service key it decrypts from the KeysObject.
      return new DoAuditLog({
        object: stubSource(
          (env as unknown as { SIGIL_AUDIT_PROD: EdgeEnv["SIGIL_AUDIT"] }).SIGIL_AUDIT_PROD,
          c.name,
        ),
        chain: c.chain ?? "default",
        kid: c.kid ?? "",
      });
    case "keys-hook":
      return stubFor(env.SIGIL_KEYS, c.name);
    case "audit-hook":
      return stubFor(env.SIGIL_AUDIT, c.name);
    default:
      throw new Error(`unknown port ${c.port}`);
  }
}

export default {
  async fetch(request: Request, env: EdgeEnv): Promise<Response> {
    const c = decode(await request.text()) as Call;
    try {
      const t = target(env, c);
      const fn: unknown = Reflect.get(t, c.method);
      if (typeof fn !== "function") throw new Error(`no method ${c.method} on ${c.port}`);
      // Reflect.apply, not fn.apply: on a DO stub, `.apply` would be a pipelined RPC property.
      const value = await Reflect.apply(fn, t, c.args);
      return new Response(encode({ ok: true, value }));
    } catch (e) {
      return new Response(encode({ ok: false, error: describeError(e) }));
    }
  },
};
