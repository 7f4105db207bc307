// The Sigil HTTP client. Every /v1 call is signed afresh per attempt (new nonce and created),
// so a retry is never a replay. Web-standard only: runs in Node 20, workerd and browsers.
import { context, propagation } from "@opentelemetry/api";
import type { ComplianceReport } from "../shared/compliance";
import { toBase64Url, utf8 } from "../shared/encoding";
import { type Signer, signRequest } from "../shared/httpsig";
import type { Emergency, Incident, IncidentState, Severity } from "../shared/incidents";
import { errorFromResponse, ProblemSchema, SigilError } from "./errors";
import { signerFromSecretKey } from "./signer";
import { readServerSentEvents, type ServerSentEvent } from "./sse";
import type * as T from "./types";

export type FetchLike = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

export interface SigilOptions {
  baseUrl: string;
  /** keyid for signatures; defaults to signer.kid, or the RFC 7638 thumbprint of secretKey. */
  keyId?: string;
  /** Either a Signer, or a raw 32-byte Ed25519 seed. Omit both for the public routes only. */
  signer?: Signer;
  secretKey?: Uint8Array;
  fetch?: FetchLike;
  /** Per attempt, until the response body is read. Default 30 s. */
  timeoutMs?: number;
  /** Extra attempts for idempotent calls (GET/PUT/DELETE) on network errors, timeouts, 502/503/504. Default 2. */
  retries?: number;
  /** First backoff delay; doubles per attempt, with jitter, capped at 5 s. Default 200 ms. */
  retryBaseMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A server-sent event stream's call: resume after `lastEventId` (an event's `id`). */
export interface StreamOptions extends CallOptions {
  lastEventId?: string;
}

type Method = "GET" | "POST" | "PUT" | "DELETE";
type Query = Record<string, string | number | boolean | undefined>;

interface RequestSpec {
  method: Method;
  path: string;
  query?: Query | undefined;
  json?: unknown;
  text?: string;
  accept?: string;
  headers?: Record<string, string>;
  signed?: boolean;
  call?: CallOptions | undefined;
}

const RETRY_STATUS = new Set([502, 503, 504]);
const IDEMPOTENT = new Set<Method>(["GET", "PUT", "DELETE"]);
const enc = encodeURIComponent;

export class Sigil {
  readonly baseUrl: string;
  readonly #keyId: string | undefined;
  readonly #signer: Promise<Signer> | undefined;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #retryBaseMs: number;

  constructor(opts: SigilOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    new URL(this.baseUrl); // throws early on a bad base URL
    if (opts.signer && opts.secretKey) throw new TypeError("pass signer or secretKey, not both");
    this.#keyId = opts.keyId ?? opts.signer?.kid;
    if (opts.signer) this.#signer = Promise.resolve(opts.signer);
    else if (opts.secretKey) {
      this.#signer = signerFromSecretKey(opts.secretKey, this.#keyId);
      this.#signer.catch(() => undefined); // surfaced on first use, not as an unhandled rejection
    }
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#retries = Math.max(0, opts.retries ?? 2);
    this.#retryBaseMs = opts.retryBaseMs ?? 200;
  }

  // ---- unauthenticated ----

  health(call?: CallOptions): Promise<T.HealthResponse> {
    return this.#json({ method: "GET", path: "/health", signed: false, call });
  }
  wellKnownKeys(call?: CallOptions): Promise<T.JwkSet> {
    return this.#json({ method: "GET", path: "/.well-known/sigil/keys", signed: false, call });
  }
  openapi(call?: CallOptions): Promise<Record<string, unknown>> {
    return this.#json({ method: "GET", path: "/openapi.json", signed: false, call });
  }

  // ---- keys ----

  readonly keys = {
    create: (body: T.CreateKeyRequest, call?: CallOptions): Promise<T.KidResponse> =>
      this.#json({ method: "POST", path: "/v1/keys", json: body, call }),
    rotate: (
      kid: string,
      body: { publicKey: T.PublicKeyInput },
      call?: CallOptions,
    ): Promise<T.KidResponse> =>
      this.#json({ method: "POST", path: `/v1/keys/${enc(kid)}/rotate`, json: body, call }),
    revoke: (kid: string, call?: CallOptions): Promise<T.KeyRecord> =>
      this.#json({ method: "DELETE", path: `/v1/keys/${enc(kid)}`, call }),
    get: (kid: string, call?: CallOptions): Promise<T.KeyRecord> =>
      this.#json({ method: "GET", path: `/v1/keys/${enc(kid)}`, call }),
    /** A page of key records ordered by kid; pass `next` back as `after` for the following page. */
    list: (
      q: {
        role?: T.Role | "service" | "held";
        subject?: string;
        status?: string;
        after?: string;
        limit?: number;
      } = {},
      call?: CallOptions,
    ): Promise<{ keys: T.KeyRecord[]; next: string | null }> =>
      this.#json({ method: "GET", path: "/v1/keys", query: q, call }),
  };

  // ---- policies ----

  readonly policies = {
    put: (name: string, source: string, call?: CallOptions): Promise<T.PolicyVersionInfo> =>
      this.#json({ method: "PUT", path: `/v1/policies/${enc(name)}`, text: source, call }),
    list: (call?: CallOptions): Promise<Record<string, unknown>> =>
      this.#json({ method: "GET", path: "/v1/policies", call }),
    /** The current version, or `version` (also of a deleted document). */
    get: (name: string, call?: CallOptions & { version?: number }): Promise<T.PolicyDocument> =>
      this.#json({
        method: "GET",
        path: `/v1/policies/${enc(name)}`,
        query: { version: call?.version },
        call,
      }),
    versions: (name: string, call?: CallOptions): Promise<Record<string, unknown>> =>
      this.#json({ method: "GET", path: `/v1/policies/${enc(name)}/versions`, call }),
    rollback: (name: string, version: number, call?: CallOptions): Promise<T.PolicyVersionInfo> =>
      this.#json({
        method: "POST",
        path: `/v1/policies/${enc(name)}/rollback`,
        json: { version },
        call,
      }),
    delete: (name: string, call?: CallOptions): Promise<Record<string, unknown>> =>
      this.#json({ method: "DELETE", path: `/v1/policies/${enc(name)}`, call }),
  };

  // ---- approvals ----

  readonly approvals = {
    list: (
      q: { status?: T.ApprovalStatus; limit?: number; before?: string } = {},
      call?: CallOptions,
    ): Promise<T.ApprovalPage> =>
      this.#json({ method: "GET", path: "/v1/approvals", query: q, call }),
    get: async (id: string, call?: CallOptions): Promise<T.Approval> =>
      (
        await this.#json<{ approval: T.Approval }>({
          method: "GET",
          path: `/v1/approvals/${enc(id)}`,
          call,
        })
      ).approval,
    /** 403 for the requester's own subject or a key without the group; 409 once answered. */
    decide: async (
      id: string,
      answer: { decision: "approve" | "deny"; reason?: string },
      call?: CallOptions,
    ): Promise<T.Approval> =>
      (
        await this.#json<{ approval: T.Approval }>({
          method: "POST",
          path: `/v1/approvals/${enc(id)}/decision`,
          json: answer,
          call,
        })
      ).approval,
    /**
     * Server-sent events (event `approval`, data: the approval as it is now) for every change the
     * key may see, from now until the server ends the stream; `break` or the signal stops it.
     */
    events: (call?: StreamOptions): AsyncIterable<ServerSentEvent> =>
      this.#stream("/v1/approvals/events", call),
  };

  // ---- incidents (docs/incidents.md) ----

  readonly incidents = {
    list: (
      q: { state?: IncidentState; severity?: Severity; limit?: number; before?: string } = {},
      call?: CallOptions,
    ): Promise<{ incidents: Incident[]; next: string | null }> =>
      this.#json({ method: "GET", path: "/v1/incidents", query: q, call }),
    get: async (id: string, call?: CallOptions): Promise<Incident> =>
      (
        await this.#json<{ incident: Incident }>({
          method: "GET",
          path: `/v1/incidents/${enc(id)}`,
          call,
        })
      ).incident,
    /** The signed evidence bundle (verify it offline with shared/incidents/evidence.ts). */
    evidence: (id: string, call?: CallOptions): Promise<Record<string, unknown>> =>
      this.#json({ method: "GET", path: `/v1/incidents/${enc(id)}/evidence`, call }),
    /** Admins; each move is audited with its reason. 409 when already there or past it. */
    acknowledge: (id: string, reason: string, call?: CallOptions): Promise<Incident> =>
      this.incidents.move(id, "acknowledge", reason, call),
    resolve: (id: string, reason: string, call?: CallOptions): Promise<Incident> =>
      this.incidents.move(id, "resolve", reason, call),
    falsePositive: (id: string, reason: string, call?: CallOptions): Promise<Incident> =>
      this.incidents.move(id, "false-positive", reason, call),
    /** Admins; 409 when the incident is already there or past it. */
    move: async (
      id: string,
      verb: "acknowledge" | "resolve" | "false-positive",
      reason: string,
      call?: CallOptions,
    ): Promise<Incident> =>
      (
        await this.#json<{ incident: Incident }>({
          method: "POST",
          path: `/v1/incidents/${enc(id)}/${verb}`,
          json: { reason },
          call,
        })
      ).incident,
    emergency: (
      call?: CallOptions,
    ): Promise<{ emergency: Emergency | null; overrideEnabled: boolean }> =>
      this.#json({ method: "GET", path: "/v1/incidents/emergency", call }),
    /** Admins, with `emergency_override_enabled`; audited. */
    overrideEmergency: async (reason: string, call?: CallOptions): Promise<Emergency> =>
      (
        await this.#json<{ emergency: Emergency }>({
          method: "POST",
          path: "/v1/incidents/emergency/override",
          json: { reason },
          call,
        })
      ).emergency,
    /**
     * Server-sent events (event `incident`, data: the incident as it is now) for every change,
     * from now (or after `lastEventId`) until the server ends the stream; `break` or the signal
     * stops it. Admins and auditors.
     */
    events: (call?: StreamOptions): AsyncIterable<ServerSentEvent> =>
      this.#stream("/v1/incidents/events", call),
  };

  // ---- evaluation ----

  evaluate(req: T.EvaluateRequest, call?: CallOptions): Promise<T.EvaluateResponse> {
    return this.#json({ method: "POST", path: "/v1/evaluate", json: req, call });
  }
  async evaluateBatch(
    requests: T.EvaluateRequest[],
    call?: CallOptions,
  ): Promise<T.EvaluateResponse[]> {
    const res = await this.#json<{ results: T.EvaluateResponse[] }>({
      method: "POST",
      path: "/v1/evaluate/batch",
      json: { requests },
      call,
    });
    return res.results;
  }

  // ---- signatures ----

  readonly signatures = {
    verify: (
      req: T.VerifySignatureRequest,
      call?: CallOptions,
    ): Promise<T.VerifySignatureResponse> =>
      this.#json({ method: "POST", path: "/v1/signatures/verify", json: req, call }),
    /** Signs with the caller's service-held key; `message` bytes are sent base64url. */
    sign: (message: Uint8Array | string, call?: CallOptions): Promise<T.SignResponse> =>
      this.#json({
        method: "POST",
        path: "/v1/sign",
        json: { message: toBase64Url(typeof message === "string" ? utf8(message) : message) },
        call,
      }),
  };

  // ---- audit ----

  readonly audit = {
    append: (event: T.AuditEventInput, call?: CallOptions): Promise<T.AuditAppendResponse> =>
      this.#json({ method: "POST", path: "/v1/audit/events", json: event, call }),
    list: (
      q: { from?: number; limit?: number } = {},
      call?: CallOptions,
    ): Promise<T.AuditEventPage> =>
      this.#json({ method: "GET", path: "/v1/audit/events", query: q, call }),
    get: (index: number, call?: CallOptions): Promise<T.AuditEvent> =>
      this.#json({ method: "GET", path: `/v1/audit/events/${index}`, call }),
    verify: (
      q: { from?: number; to?: number } = {},
      call?: CallOptions,
    ): Promise<T.AuditVerifyResponse> =>
      this.#json({ method: "GET", path: "/v1/audit/verify", query: q, call }),
    checkpoint: (call?: CallOptions): Promise<T.AuditCheckpoint> =>
      this.#json({ method: "GET", path: "/v1/audit/checkpoint", call }),
    inclusionProof: (
      q: { index: number; treeSize?: number },
      call?: CallOptions,
    ): Promise<T.InclusionProof> =>
      this.#json({ method: "GET", path: "/v1/audit/proofs/inclusion", query: q, call }),
    consistencyProof: (
      q: { from: number; to?: number },
      call?: CallOptions,
    ): Promise<T.ConsistencyProof> =>
      this.#json({ method: "GET", path: "/v1/audit/proofs/consistency", query: q, call }),
    /** The raw NDJSON export: kept as text so it can be verified offline byte for byte. */
    export: async (q: { from?: number; to?: number } = {}, call?: CallOptions): Promise<string> => {
      const res = await this.#send({
        method: "GET",
        path: "/v1/audit/export",
        query: q,
        accept: "application/x-ndjson",
        call,
      });
      return res.text;
    },
  };

  // ---- compliance ----

  /** Compliance reports (docs/compliance.md): auditors and admins. */
  readonly compliance = {
    frameworks: (call?: CallOptions): Promise<{ frameworks: T.ComplianceFrameworkSummary[] }> =>
      this.#json({ method: "GET", path: "/v1/compliance/frameworks", call }),
    /** A signed report for the framework over [from, to) (RFC 3339 UTC with milliseconds). */
    generate: (
      body: { framework: string; from: string; to: string },
      call?: CallOptions,
    ): Promise<ComplianceReport> =>
      this.#json({ method: "POST", path: "/v1/compliance/reports", json: body, call }),
    get: (id: string, call?: CallOptions): Promise<ComplianceReport> =>
      this.#json({ method: "GET", path: `/v1/compliance/reports/${enc(id)}`, call }),
    /** The self-contained printable HTML page of a stored report. */
    html: async (id: string, call?: CallOptions): Promise<string> =>
      (
        await this.#send({
          method: "GET",
          path: `/v1/compliance/reports/${enc(id)}`,
          accept: "text/html",
          call,
        })
      ).text,
  };

  // ---- risk and tools ----

  /** Quarantines (docs/http-api.md "Quarantine"): admins place and lift, auditors list. */
  readonly quarantine = {
    /**
     * Idempotent: the record already in force when the target is quarantined. `incidentId` links
     * it to an existing incident (else 404 `not-found`).
     */
    place: (
      body: ({ subject: string } | { kid: string } | { workerId: string }) & {
        reason: string;
        incidentId?: string;
      },
      call?: CallOptions,
    ): Promise<{ quarantine: T.Quarantine }> =>
      this.#json({ method: "POST", path: "/v1/quarantine", json: body, call }),
    lift: (
      id: string,
      reason: string,
      call?: CallOptions,
    ): Promise<{ quarantine: T.Quarantine; lifted: boolean }> =>
      this.#json({ method: "DELETE", path: `/v1/quarantine/${enc(id)}`, json: { reason }, call }),
    list: (
      q: { active?: "true" | "false"; limit?: number; before?: string } = {},
      call?: CallOptions,
    ): Promise<{ quarantines: T.Quarantine[]; next: string | null }> =>
      this.#json({ method: "GET", path: "/v1/quarantine", query: { ...q }, call }),
  };

  readonly risk = {
    assess: (req: T.RiskAssessRequest, call?: CallOptions): Promise<T.RiskAssessResponse> =>
      this.#json({ method: "POST", path: "/v1/risk/assess", json: req, call }),
  };

  readonly tools = {
    verify: (req: T.ToolVerifyRequest, call?: CallOptions): Promise<T.ToolVerifyResponse> =>
      this.#json({ method: "POST", path: "/v1/tools/verify", json: req, call }),
    putPin: (domain: string, pin: T.ToolPinRequest, call?: CallOptions): Promise<T.ToolPin> =>
      this.#json({ method: "PUT", path: `/v1/tools/pins/${enc(domain)}`, json: pin, call }),
    getPin: (domain: string, call?: CallOptions): Promise<T.ToolPin> =>
      this.#json({ method: "GET", path: `/v1/tools/pins/${enc(domain)}`, call }),
    /** Removes the domain-wide pin, or with `toolId` that one tool's pin. */
    deletePin: (
      domain: string,
      opts: { toolId?: string } = {},
      call?: CallOptions,
    ): Promise<T.ToolPin> =>
      this.#json({
        method: "DELETE",
        path: `/v1/tools/pins/${enc(domain)}`,
        query: { toolId: opts.toolId },
        call,
      }),
    review: (schema: unknown, call?: CallOptions): Promise<T.ToolReviewResponse> =>
      this.#json({ method: "POST", path: "/v1/tools/review", json: { schema }, call }),
  };

  // ---- jobs ----

  readonly jobs = {
    submit: (spec: T.JobSpec, call?: CallOptions): Promise<T.JobAccepted> =>
      this.#json({ method: "POST", path: "/v1/jobs", json: spec, call }),
    get: (id: string, call?: CallOptions): Promise<T.JobRecord> =>
      this.#json({ method: "GET", path: `/v1/jobs/${enc(id)}`, call }),
    /** Long-polls; the client timeout is extended by the server-side wait. */
    wait: (id: string, waitMs = 30_000, call?: CallOptions): Promise<T.JobRecord> =>
      this.#json({
        method: "GET",
        path: `/v1/jobs/${enc(id)}/wait`,
        query: { timeoutMs: waitMs },
        call: { ...call, timeoutMs: (call?.timeoutMs ?? this.#timeoutMs) + waitMs },
      }),
    /** Newest first; an agent sees its own, admins and auditors all. */
    list: (
      q: { status?: T.JobStatus; limit?: number; cursor?: string } = {},
      call?: CallOptions,
    ): Promise<T.JobPage> => this.#json({ method: "GET", path: "/v1/jobs", query: { ...q }, call }),
    /** The submitter or an admin: a queued job ends `killed`, a running one is killed. */
    cancel: (id: string, reason?: string, call?: CallOptions): Promise<T.JobCancelled> =>
      this.#json({
        method: "POST",
        path: `/v1/jobs/${enc(id)}/cancel`,
        json: reason === undefined ? {} : { reason },
        call,
      }),
    /** Server-sent events until the server ends the stream; `break` or the signal stops it. */
    events: (id: string, call?: StreamOptions): AsyncIterable<ServerSentEvent> =>
      this.#stream(`/v1/jobs/${enc(id)}/events`, call),
    reportResult: (
      id: string,
      report: T.JobResultReport,
      call?: CallOptions,
    ): Promise<Record<string, unknown>> =>
      this.#json({ method: "POST", path: `/v1/jobs/${enc(id)}/result`, json: report, call }),
  };

  /**
   * A server-sent event stream. The server ends a stream whose key was revoked or quarantined
   * meanwhile with event `end` carrying a problem (docs/http-api.md): thrown as a SigilError.
   */
  async *#stream(path: string, call?: StreamOptions): AsyncGenerator<ServerSentEvent, void> {
    const res = await this.#send({
      method: "GET",
      path,
      accept: "text/event-stream",
      // Covered by the signature (signRequest's defaultComponents), as the server requires: where
      // the stream resumes is the client's to say (docs/http-api.md "Server-sent events").
      ...(call?.lastEventId !== undefined
        ? { headers: { "last-event-id": call.lastEventId } }
        : {}),
      call,
      stream: true,
    });
    if (!res.response.body) throw SigilError.client("invalid-response", "event stream has no body");
    for await (const e of readServerSentEvents(res.response.body)) {
      if (e.event === "end") {
        const p = ProblemSchema.safeParse(e.data);
        throw p.success
          ? new SigilError({ ...p.data, status: p.data.status ?? 0 })
          : SigilError.client("invalid-response", "the stream ended with a malformed problem");
      }
      yield e;
    }
  }

  // ---- transport ----

  async #json<R>(spec: RequestSpec): Promise<R> {
    const { text, response } = await this.#send(spec);
    if (response.status === 204 || text === "") return {} as R;
    try {
      return JSON.parse(text) as R;
    } catch (e) {
      throw SigilError.client(
        "invalid-response",
        `response to ${spec.method} ${spec.path} is not JSON`,
        e,
      );
    }
  }

  async #send(
    spec: RequestSpec & { stream?: boolean },
  ): Promise<{ response: Response; text: string }> {
    const url = new URL(this.baseUrl + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const body = spec.json !== undefined ? JSON.stringify(spec.json) : spec.text;
    const contentType =
      spec.json !== undefined
        ? "application/json"
        : spec.text !== undefined
          ? "text/plain; charset=utf-8"
          : undefined;
    const retries = IDEMPOTENT.has(spec.method) ? this.#retries : 0;
    const timeoutMs = spec.call?.timeoutMs ?? this.#timeoutMs;

    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {
        ...spec.headers,
        accept: spec.accept ?? "application/json",
      };
      if (contentType) headers["content-type"] = contentType;
      // The caller's trace (traceparent), when an OpenTelemetry SDK is registered; else nothing.
      propagation.inject(context.active(), headers);
      if (spec.signed !== false)
        Object.assign(headers, await this.#sign(spec.method, url, headers, body));

      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), timeoutMs);
      const signal = spec.call?.signal
        ? AbortSignal.any([spec.call.signal, timeout.signal])
        : timeout.signal;
      let retryable: SigilError;
      let retryAfterMs: number | undefined;
      try {
        const init: RequestInit = { method: spec.method, headers, signal };
        if (body !== undefined) init.body = body;
        const response = await this.#fetch(url.toString(), init);
        if (response.ok) {
          if (spec.stream) {
            clearTimeout(timer); // the stream lives as long as the caller reads it
            return { response, text: "" };
          }
          return { response, text: await response.text() };
        }
        const err = await errorFromResponse(response);
        if (!RETRY_STATUS.has(response.status)) throw err;
        retryable = err;
        retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      } catch (e) {
        if (e instanceof SigilError) {
          if (!RETRY_STATUS.has(e.status)) throw e;
          retryable = e;
        } else if (spec.call?.signal?.aborted) {
          throw SigilError.client("aborted", `${spec.method} ${spec.path} was aborted`, e);
        } else if (timeout.signal.aborted) {
          retryable = SigilError.client(
            "timeout",
            `${spec.method} ${spec.path} timed out after ${timeoutMs} ms`,
            e,
          );
        } else {
          retryable = SigilError.client(
            "network",
            `${spec.method} ${spec.path} failed: ${String(e)}`,
            e,
          );
        }
      } finally {
        clearTimeout(timer);
      }
      if (attempt >= retries) throw retryable;
      await sleep(backoff(this.#retryBaseMs, attempt, retryAfterMs), spec.call?.signal);
    }
  }

  async #sign(method: Method, url: URL, headers: Record<string, string>, body: string | undefined) {
    if (!this.#signer) {
      throw SigilError.client("no-key", "this client has no signing key; /v1 routes need one");
    }
    const signer = await this.#signer;
    // signRequest adds content-digest for bodies and picks a fresh nonce and `created`.
    return signRequest({ method, url, headers, body }, signer, {
      keyid: this.#keyId ?? signer.kid,
    });
  }
}

function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const s = Number(v);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined;
}

function backoff(baseMs: number, attempt: number, retryAfterMs: number | undefined): number {
  const exp = Math.min(5_000, baseMs * 2 ** attempt);
  const jittered = exp / 2 + Math.random() * (exp / 2);
  return Math.min(5_000, Math.max(jittered, retryAfterMs ?? 0));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted)
      return reject(SigilError.client("aborted", "aborted during retry backoff"));
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(t);
      reject(SigilError.client("aborted", "aborted during retry backoff"));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
