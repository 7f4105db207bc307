// Tool verification service: SchemaPin discovery + signature check + Sigil's strict TOFU.
// The HTTP layer calls it and appends the returned audit/security events to their sinks.
//
// Order of checks: canonicalization → discovery → provider key → revocation → signature →
// pins. Pins are written only after the signature verified (the reference SDKs pin first).

import type { VerifyToolRequest } from "./api";
import { canonicalizeSchema, checkCanonicalization } from "./canonical";
import { type DiscoveryResolver, normalizeDomain, type ResolvedProvider } from "./discovery";
import { normalizeFingerprint } from "./documents";
import { type DiscoveryRefusal, SchemaPinError, type SchemaPinErrorCode } from "./errors";
import { type KeyAlgorithm, type ParsedPublicKey, parsePublicKeyPem, spkiToPem } from "./keys";
import { type PinRecord, type PinStore, pinKey } from "./pins";
import { checkSchemaSignature, type SignatureVariant } from "./signatures";

export type VerifyResult =
  | "trusted"
  | "first_use"
  | "signature_invalid"
  | "unknown_provider"
  | "key_pin_mismatch"
  | "key_revoked";

/** The `[tofu]` config section, as shared/config parses it. */
export interface TofuOptions {
  enabled?: boolean;
  automatic_key_pinning?: boolean;
  trust_on_first_use_timeout_hours?: number;
}

export interface PinView {
  key: string;
  domain: string;
  toolId: string | null;
  scope: "tool" | "domain";
  status: "first_use" | "pinned";
  fingerprint: string;
  algorithm: KeyAlgorithm;
  source: PinRecord["source"];
  firstSeenAt: string;
  pinnedAt: string | null;
  expiresAt: string | null;
}

export interface VerifyToolResponse {
  result: VerifyResult;
  /** True only for "trusted". */
  trusted: boolean;
  toolId: string;
  domain: string;
  pinKey: string;
  /** Fingerprint of the provider's current key, when one was found. */
  fingerprint: string | null;
  /** On key_pin_mismatch: the fingerprint we hold. */
  pinnedFingerprint?: string;
  algorithm: KeyAlgorithm | null;
  /** Which scheme the signature verified under; "single-hash-go" is reported, never accepted. */
  variant: SignatureVariant | null;
  signatureVerified: boolean;
  errorCode?: SchemaPinErrorCode;
  detail: string;
  developerName?: string;
  discoverySource?: ResolvedProvider["source"];
  pin?: PinView;
  warnings: string[];
}

export interface ToolAuditEvent {
  type: "tool.verify" | "tool.pin.put" | "tool.pin.delete" | "tool.pin.confirm";
  at: string;
  domain: string;
  toolId: string | null;
  outcome: string;
  fingerprint: string | null;
  errorCode?: SchemaPinErrorCode;
  variant?: SignatureVariant | null;
  detail: string;
}

export interface ToolSecurityEvent {
  type: "tool.key_pin_mismatch" | "tool.key_revoked" | "tool.discovery_refused";
  severity: "medium" | "high";
  at: string;
  domain: string;
  toolId: string;
  /** The provider key involved; null when discovery was refused before any key was seen. */
  fingerprint: string | null;
  pinnedFingerprint?: string;
  /** tool.discovery_refused: what was refused (host, address, kind). */
  refusal?: DiscoveryRefusal;
  detail: string;
}

/** What verify() takes: a parsed VerifyToolRequest, or any caller's equivalent (schema is re-validated). */
export type VerifyToolInput = Omit<VerifyToolRequest, "schema"> & { schema: unknown };

export interface VerifyToolOutcome {
  response: VerifyToolResponse;
  /** Always exactly one: every verification is audited. */
  auditEvent: ToolAuditEvent;
  securityEvents: ToolSecurityEvent[];
}

export type PinAdminError =
  | { ok: false; error: "invalid_key"; detail: string }
  | { ok: false; error: "invalid_domain"; detail: string }
  | { ok: false; error: "not_found"; detail: string }
  | { ok: false; error: "conflict"; detail: string; existing: PinView };

export type PutPinOutcome =
  | { ok: true; created: boolean; pin: PinView; auditEvent: ToolAuditEvent | null }
  | PinAdminError;

export interface ToolVerificationDeps {
  pins: PinStore;
  resolver: DiscoveryResolver;
  tofu?: TofuOptions;
  now?: () => number;
  /** Tests only: accept localhost/IP-like domains. */
  allowLocalDomains?: boolean;
}

const CAS_ATTEMPTS = 5;
const iso = (ms: number): string => new Date(ms).toISOString();

export function toPinView(r: PinRecord): PinView {
  return {
    key: pinKey(r.toolId, r.domain),
    domain: r.domain,
    toolId: r.toolId,
    scope: r.toolId === null ? "domain" : "tool",
    status: r.status,
    fingerprint: r.fingerprint,
    algorithm: r.algorithm,
    source: r.source,
    firstSeenAt: iso(r.firstSeenAt),
    pinnedAt: r.pinnedAt === null ? null : iso(r.pinnedAt),
    expiresAt: r.expiresAt === null ? null : iso(r.expiresAt),
  };
}

const DISCOVERY_CODES = new Set<SchemaPinErrorCode>([
  "discovery_fetch_failed",
  "discovery_invalid",
  "domain_mismatch",
  "key_not_found",
]);

export class ToolVerificationService {
  private readonly now: () => number;
  private readonly automatic: boolean;
  private readonly tofuEnabled: boolean;
  private readonly firstUseMs: number;

  constructor(private readonly deps: ToolVerificationDeps) {
    this.now = deps.now ?? Date.now;
    // Secure by default: no silent pinning, 24 h to confirm a first use.
    this.automatic = deps.tofu?.automatic_key_pinning ?? false;
    this.tofuEnabled = deps.tofu?.enabled ?? true;
    this.firstUseMs = (deps.tofu?.trust_on_first_use_timeout_hours ?? 24) * 3_600_000;
  }

  private domainOf(domain: string): string {
    return normalizeDomain(domain, { allowLocal: this.deps.allowLocalDomains ?? false });
  }

  /** Verifies a tool schema for `toolId@domain`. Throws only if the pin store fails. */
  async verify(req: VerifyToolInput): Promise<VerifyToolOutcome> {
    const at = this.now();
    const base = {
      toolId: req.toolId,
      domain: req.domain.toLowerCase(),
      pinKey: pinKey(req.toolId, req.domain.toLowerCase()),
      fingerprint: null,
      algorithm: null,
      variant: null,
      signatureVerified: false,
      warnings: [] as string[],
    };
    const security: ToolSecurityEvent[] = [];
    const finish = (r: Omit<VerifyToolResponse, "trusted">): VerifyToolOutcome => {
      const response: VerifyToolResponse = { ...r, trusted: r.result === "trusted" };
      return {
        response,
        securityEvents: security,
        auditEvent: {
          type: "tool.verify",
          at: iso(at),
          domain: response.domain,
          toolId: response.toolId,
          outcome: response.result,
          fingerprint: response.fingerprint,
          ...(response.errorCode ? { errorCode: response.errorCode } : {}),
          variant: response.variant,
          detail: response.detail,
        },
      };
    };
    const fail = (
      result: VerifyResult,
      e: SchemaPinError,
      extra: Partial<VerifyToolResponse> = {},
    ): VerifyToolOutcome => {
      // Discovery refusing to go somewhere (an IP literal, a name that resolves to a private or
      // metadata address) is an SSRF attempt or a misconfigured provider: a security event.
      if (e.refusal) {
        security.push({
          type: "tool.discovery_refused",
          severity: "medium",
          at: iso(at),
          domain: extra.domain ?? base.domain,
          toolId: req.toolId,
          fingerprint: null,
          refusal: e.refusal,
          detail: e.message,
        });
      }
      return finish({ ...base, ...extra, result, errorCode: e.code, detail: e.message });
    };

    // 1. Canonical form (local, before any network).
    let domain: string;
    try {
      checkCanonicalization(req.canonicalization);
      canonicalizeSchema(req.schema);
      domain = this.domainOf(req.domain);
    } catch (e) {
      if (!(e instanceof SchemaPinError)) throw e;
      return fail(DISCOVERY_CODES.has(e.code) ? "unknown_provider" : "signature_invalid", e);
    }

    // 2-3. Discovery and the provider key.
    let provider: ResolvedProvider;
    try {
      provider = await this.deps.resolver.resolve(domain);
    } catch (e) {
      // A resolver that throws something else is still a failed discovery, never a pass.
      const err =
        e instanceof SchemaPinError ? e : new SchemaPinError("discovery_fetch_failed", String(e));
      return fail("unknown_provider", err, { domain });
    }
    const known = {
      domain,
      developerName: provider.discovery.developer_name,
      discoverySource: provider.source,
    };
    let key: ParsedPublicKey;
    try {
      key = parsePublicKeyPem(provider.discovery.public_key_pem);
    } catch (e) {
      if (!(e instanceof SchemaPinError)) throw e;
      return fail("unknown_provider", e, known);
    }
    const found = { ...known, fingerprint: key.fingerprint, algorithm: key.algorithm };
    const warnings: string[] = [];
    const malformed = (provider.discovery.revoked_keys ?? []).filter(
      (f) => !/^sha256:[0-9a-f]{64}$/.test(normalizeFingerprint(f)),
    ).length;
    if (malformed > 0) warnings.push(`discovery lists ${malformed} malformed revoked_keys entries`);
    if (provider.discovery.schema_version < "1.2") {
      warnings.push(
        `discovery uses schema_version ${provider.discovery.schema_version.slice(0, 16)}`,
      );
    }

    // 4. Revocation: the discovery list and the standalone document, both.
    const revokedBy = this.revokedBy(provider, key.fingerprint);
    if (revokedBy) {
      const detail = `key ${key.fingerprint} is revoked (${revokedBy})`;
      security.push({
        type: "tool.key_revoked",
        severity: "high",
        at: iso(at),
        domain,
        toolId: req.toolId,
        fingerprint: key.fingerprint,
        detail,
      });
      return finish({
        ...base,
        ...found,
        domain,
        warnings,
        result: "key_revoked",
        errorCode: "key_revoked",
        detail,
      });
    }

    // 5. Signature, under the standard scheme for the key's algorithm.
    let sig: Awaited<ReturnType<typeof checkSchemaSignature>>;
    try {
      sig = await checkSchemaSignature(req.schema, req.signature, key, req.algorithm);
    } catch (e) {
      if (!(e instanceof SchemaPinError)) throw e;
      return fail("signature_invalid", e, { ...found, domain, warnings });
    }

    // 6. Pins.
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const decided = await this.decide(domain, req.toolId, key, sig.valid, at);
      if (decided === "retry") continue;
      const common = {
        ...base,
        ...found,
        domain,
        warnings,
        variant: sig.variant,
        signatureVerified: sig.valid,
        ...(decided.pin ? { pin: toPinView(decided.pin) } : {}),
      };
      if (decided.kind === "mismatch") {
        const pinned = decided.pin!;
        const detail =
          `provider key ${key.fingerprint} differs from the ${pinned.status === "pinned" ? "pinned" : "first-seen (unconfirmed)"} ` +
          `key ${pinned.fingerprint} for ${pinKey(pinned.toolId, domain)}; an admin must re-pin`;
        security.push({
          type: "tool.key_pin_mismatch",
          severity: "high",
          at: iso(at),
          domain,
          toolId: req.toolId,
          fingerprint: key.fingerprint,
          pinnedFingerprint: pinned.fingerprint,
          detail,
        });
        return finish({
          ...common,
          result: "key_pin_mismatch",
          errorCode: "key_pin_mismatch",
          pinnedFingerprint: pinned.fingerprint,
          detail,
        });
      }
      if (!sig.valid) {
        return finish({
          ...common,
          result: "signature_invalid",
          errorCode: "signature_invalid",
          detail: sig.detail,
        });
      }
      if (decided.kind === "trusted") {
        return finish({
          ...common,
          result: "trusted",
          detail:
            decided.pin!.source === "automatic" && decided.pin!.pinnedAt === at
              ? "signature valid; key pinned on first use (automatic_key_pinning)"
              : "signature valid under the pinned key",
        });
      }
      return finish({
        ...common,
        result: "first_use",
        detail: "signature valid, but the key is not pinned yet: an admin must pin or confirm it",
      });
    }
    throw new Error(`pin store contention on ${pinKey(req.toolId, domain)}`);
  }

  private revokedBy(provider: ResolvedProvider, fingerprint: string): string | null {
    if (
      (provider.discovery.revoked_keys ?? []).some((f) => normalizeFingerprint(f) === fingerprint)
    ) {
      return "discovery revoked_keys";
    }
    const entry = provider.revocation?.revoked_keys.find(
      (k) => normalizeFingerprint(k.fingerprint) === fingerprint,
    );
    return entry
      ? `revocation document: ${entry.reason} at ${entry.revoked_at.slice(0, 64)}`
      : null;
  }

  /** The pin decision for a key; may write (first_use / automatic pin / expiry), via CAS. */
  private async decide(
    domain: string,
    toolId: string,
    key: ParsedPublicKey,
    signatureValid: boolean,
    at: number,
  ): Promise<
    "retry" | { kind: "trusted" | "first_use" | "mismatch" | "none"; pin: PinRecord | null }
  > {
    const { pins } = this.deps;
    let toolPin = await pins.get(domain, toolId);
    if (toolPin?.status === "first_use" && toolPin.expiresAt !== null && toolPin.expiresAt <= at) {
      if (!(await pins.compareAndSwap(domain, toolId, toolPin, null))) return "retry";
      toolPin = null;
    }
    const domainPin = toolPin?.status === "pinned" ? null : await pins.get(domain, null);
    const effective =
      toolPin?.status === "pinned" ? toolPin : domainPin?.status === "pinned" ? domainPin : toolPin;
    if (effective) {
      if (effective.fingerprint !== key.fingerprint) return { kind: "mismatch", pin: effective };
      return { kind: effective.status === "pinned" ? "trusted" : "first_use", pin: effective };
    }
    // Nothing recorded. Only a verified signature may create a record.
    if (!signatureValid) return { kind: "none", pin: null };
    if (!this.automatic && (!this.tofuEnabled || this.firstUseMs <= 0)) {
      return { kind: "first_use", pin: null };
    }
    const record: PinRecord = {
      domain,
      toolId,
      status: this.automatic ? "pinned" : "first_use",
      fingerprint: key.fingerprint,
      publicKeyPem: keyPem(key),
      algorithm: key.algorithm,
      source: this.automatic ? "automatic" : "observed",
      firstSeenAt: at,
      pinnedAt: this.automatic ? at : null,
      expiresAt: this.automatic ? null : at + this.firstUseMs,
    };
    if (!(await pins.compareAndSwap(domain, toolId, null, record))) return "retry";
    return { kind: this.automatic ? "trusted" : "first_use", pin: record };
  }

  // ---- admin operations (PUT/GET/DELETE /v1/tools/pins/:domain) ----

  async listPins(domainIn: string): Promise<{ ok: true; pins: PinView[] } | PinAdminError> {
    const domain = this.adminDomain(domainIn);
    if (typeof domain !== "string") return domain;
    const at = this.now();
    const records = await this.deps.pins.list(domain);
    return {
      ok: true,
      pins: records
        .filter((r) => !(r.status === "first_use" && r.expiresAt !== null && r.expiresAt <= at))
        .map(toPinView),
    };
  }

  /** Pins a key (domain-wide without toolId). A different key already pinned is a conflict. */
  async putPin(
    domainIn: string,
    body: { publicKeyPem: string; toolId?: string | undefined },
  ): Promise<PutPinOutcome> {
    const domain = this.adminDomain(domainIn);
    if (typeof domain !== "string") return domain;
    let key: ParsedPublicKey;
    try {
      key = parsePublicKeyPem(body.publicKeyPem);
    } catch (e) {
      return { ok: false, error: "invalid_key", detail: (e as Error).message };
    }
    const toolId = body.toolId ?? null;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const at = this.now();
      const cur = await this.deps.pins.get(domain, toolId);
      if (cur?.status === "pinned") {
        if (cur.fingerprint === key.fingerprint) {
          return { ok: true, created: false, pin: toPinView(cur), auditEvent: null };
        }
        return {
          ok: false,
          error: "conflict",
          detail: `${pinKey(toolId, domain)} is pinned to ${cur.fingerprint}; delete it first to re-pin`,
          existing: toPinView(cur),
        };
      }
      const next: PinRecord = {
        domain,
        toolId,
        status: "pinned",
        fingerprint: key.fingerprint,
        publicKeyPem: keyPem(key),
        algorithm: key.algorithm,
        source: "admin",
        firstSeenAt: cur?.firstSeenAt ?? at,
        pinnedAt: at,
        expiresAt: null,
      };
      if (await this.deps.pins.compareAndSwap(domain, toolId, cur, next)) {
        return {
          ok: true,
          created: true,
          pin: toPinView(next),
          auditEvent: this.adminEvent(
            "tool.pin.put",
            at,
            domain,
            toolId,
            "pinned",
            key.fingerprint,
            cur ? `replaced unconfirmed first_use ${cur.fingerprint}` : "pinned by admin",
          ),
        };
      }
    }
    throw new Error(`pin store contention on ${pinKey(toolId, domain)}`);
  }

  /** Confirms an unexpired first_use observation as a pin (the admin "confirm" path). */
  async confirmFirstUse(domainIn: string, toolId: string): Promise<PutPinOutcome> {
    const domain = this.adminDomain(domainIn);
    if (typeof domain !== "string") return domain;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const at = this.now();
      const cur = await this.deps.pins.get(domain, toolId);
      if (cur?.status === "pinned") {
        return { ok: true, created: false, pin: toPinView(cur), auditEvent: null };
      }
      if (!cur || (cur.expiresAt !== null && cur.expiresAt <= at)) {
        return {
          ok: false,
          error: "not_found",
          detail: `no unexpired first use for ${pinKey(toolId, domain)}`,
        };
      }
      const next: PinRecord = {
        ...cur,
        status: "pinned",
        source: "confirmed",
        pinnedAt: at,
        expiresAt: null,
      };
      if (await this.deps.pins.compareAndSwap(domain, toolId, cur, next)) {
        return {
          ok: true,
          created: true,
          pin: toPinView(next),
          auditEvent: this.adminEvent(
            "tool.pin.confirm",
            at,
            domain,
            toolId,
            "pinned",
            cur.fingerprint,
            "first use confirmed by admin",
          ),
        };
      }
    }
    throw new Error(`pin store contention on ${pinKey(toolId, domain)}`);
  }

  async deletePin(
    domainIn: string,
    toolId?: string,
  ): Promise<{ ok: true; deleted: boolean; auditEvent: ToolAuditEvent } | PinAdminError> {
    const domain = this.adminDomain(domainIn);
    if (typeof domain !== "string") return domain;
    const t = toolId ?? null;
    const cur = await this.deps.pins.get(domain, t).catch(() => null);
    const deleted = await this.deps.pins.delete(domain, t);
    return {
      ok: true,
      deleted,
      auditEvent: this.adminEvent(
        "tool.pin.delete",
        this.now(),
        domain,
        t,
        deleted ? "deleted" : "absent",
        cur?.fingerprint ?? null,
        deleted ? "pin removed by admin" : "nothing to remove",
      ),
    };
  }

  private adminDomain(domain: string): string | PinAdminError {
    try {
      return this.domainOf(domain);
    } catch (e) {
      return { ok: false, error: "invalid_domain", detail: (e as Error).message };
    }
  }

  private adminEvent(
    type: ToolAuditEvent["type"],
    at: number,
    domain: string,
    toolId: string | null,
    outcome: string,
    fingerprint: string | null,
    detail: string,
  ): ToolAuditEvent {
    return { type, at: iso(at), domain, toolId, outcome, fingerprint, detail };
  }
}

/** Stored PEM is re-encoded from the parsed SPKI, so it is canonical whatever the input layout. */
const keyPem = (key: ParsedPublicKey): string => spkiToPem(key.spki);
