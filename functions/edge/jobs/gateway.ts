// JobsBackend for the edge: a Worker cannot speak BullMQ, so each call is forwarded to the Node job
// gateway (SIGIL_GATEWAY_URL) as `POST <gateway>/v1/gateway/jobs/<op>` with the call's arguments as
// JSON, signed (RFC 9421, Ed25519) with the edge's service key; the reply is `{ "result": ... }`.
// The Node side (functions/routes/gateway.ts) accepts only keys registered with role `gateway` and
// re-verifies every envelope against the caller's key; any failure here fails the route closed.

import { type Signer, signRequest } from "../../../shared/httpsig";
import type {
  ClaimInfo,
  ClaimOutcome,
  FinishOutcome,
  JobEvent,
  JobRecord,
  JobsBackend,
  ReleaseOutcome,
  ResultClaim,
  StartInfo,
  StartOutcome,
  StoredResult,
} from "../../../shared/jobs/backend";
import type { SignedEnvelope } from "../../../shared/jobs/envelope";
import { LimitExceededError } from "../../../shared/limits";

export interface GatewayJobsOptions {
  baseUrl: string;
  signer: Signer;
  /** Per call, on top of any long-poll time the call asks for. Default 10 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class GatewayJobsBackend implements JobsBackend {
  readonly #base: string;
  readonly #signer: Signer;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: GatewayJobsOptions) {
    this.#base = opts.baseUrl.replace(/\/+$/, "");
    this.#signer = opts.signer;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#fetch = opts.fetch ?? ((i, init) => fetch(i, init));
  }

  async #call<T>(op: string, args: unknown[], waitMs = 0, signal?: AbortSignal): Promise<T> {
    const url = `${this.#base}/v1/gateway/jobs/${op}`;
    const body = JSON.stringify({ args });
    const headers: Record<string, string> = { "content-type": "application/json" };
    const sig = await signRequest({ method: "POST", url, headers, body }, this.#signer, {
      keyid: this.#signer.kid,
    });
    const timeout = AbortSignal.timeout(this.#timeoutMs + waitMs);
    const res = await this.#fetch(url, {
      method: "POST",
      headers: { ...headers, ...sig },
      body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (res.status === 429) {
      // A quota the Node side enforces (a full queue): the edge's caller gets the same 429.
      const retry = Number(res.headers.get("retry-after") ?? "1");
      const body = (await res.json().catch(() => null)) as { detail?: string } | null;
      throw new LimitExceededError(
        "queued_jobs",
        (Number.isFinite(retry) ? Math.max(1, retry) : 1) * 1000,
        body?.detail ?? `job gateway refused ${op}: over a quota`,
      );
    }
    if (!res.ok) throw new Error(`job gateway answered ${res.status} for ${op}`);
    const json = (await res.json()) as { result?: T };
    if (!json || typeof json !== "object" || !("result" in json))
      throw new Error(`job gateway: malformed reply to ${op}`);
    return json.result as T;
  }

  submit(envelope: SignedEnvelope, envelopeHash: string): Promise<JobRecord> {
    return this.#call("submit", [envelope, envelopeHash]);
  }
  /** Node re-verifies the envelope against this edge's gateway key, as for submit. */
  hold(envelope: SignedEnvelope, envelopeHash: string, approvalId: string): Promise<JobRecord> {
    return this.#call("hold", [envelope, envelopeHash, approvalId]);
  }
  release(jobId: string): Promise<ReleaseOutcome> {
    return this.#call("release", [jobId]);
  }
  reject(jobId: string, reason: string): Promise<ReleaseOutcome> {
    return this.#call("reject", [jobId, reason]);
  }
  get(jobId: string): Promise<JobRecord | null> {
    return this.#call("get", [jobId]);
  }
  claim(jobId: string, info: ClaimInfo): Promise<ClaimOutcome> {
    return this.#call("claim", [jobId, info]);
  }
  markStarted(jobId: string, info: StartInfo): Promise<StartOutcome> {
    return this.#call("markStarted", [jobId, info]);
  }
  /** Node re-verifies the result under the claim's public key and checks the claim itself. */
  finish(jobId: string, result: StoredResult, claim: ResultClaim): Promise<FinishOutcome> {
    return this.#call("finish", [jobId, result, claim]);
  }
  fail(jobId: string, status: "error" | "rejected", reason: string): Promise<FinishOutcome> {
    return this.#call("fail", [jobId, status, reason]);
  }
  events(
    jobId: string,
    after: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<JobEvent[]> {
    return this.#call("events", [jobId, after ?? null, timeoutMs], timeoutMs, signal);
  }
  wait(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<JobRecord | null> {
    return this.#call("wait", [jobId, timeoutMs], timeoutMs, signal);
  }
  pending(submitter: { kid: string; subject: string | null }): Promise<number> {
    return this.#call("pending", [submitter]);
  }
}
