// The Node job gateway (docs/architecture.md "Shape"): a Worker cannot speak BullMQ, so the edge
// hands its JobsBackend calls here as `POST /v1/gateway/jobs/<op> {args}` → `{result}`, signed with
// a key an admin registered with role `gateway`. Every envelope is re-verified here against the
// calling gateway's own key, so a gateway can only queue what it signed itself; every forwarded
// result is re-verified under the worker key it names (whose thumbprint is its key id) and against
// the job, and the backend stores it only from the worker key that claimed the attempt.
import { createRoute, z } from "@hono/zod-openapi";
import { ApprovalIdSchema } from "../../shared/approvals";
import type { SigilConfig } from "../../shared/config";
import { ed25519Kid, verifyEd25519 } from "../../shared/crypto";
import { fromBase64Url } from "../../shared/encoding";
import {
  envelopeChecks,
  envelopeHash,
  expectationFor,
  type JobsBackend,
  type SignedEnvelope,
  signedResultSchema,
  verifyEnvelope,
  verifyResult,
} from "../../shared/jobs";
import { type KeyRegistry, usableForNewRequest } from "../../shared/keys";
import { LimitExceededError } from "../../shared/limits";
import { type AuditFn, securityEvent } from "../audit-sink";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem, rateLimited } from "../problem";
import { router } from "../router";
import { MAX_JOB_WAIT_MS } from "./jobs";

const jobId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);
// As long as the public route allows: the edge passes a client's timeoutMs through unchanged.
const waitMs = z.number().int().min(0).max(MAX_JOB_WAIT_MS);
const iso = z.string().max(64);
const attempt = z.number().int().min(1).max(1000);
const workerKid = z.string().min(1).max(256);

const argsByOp = {
  submit: z.tuple([z.unknown(), z.string().regex(/^[0-9a-f]{64}$/)]),
  hold: z.tuple([z.unknown(), z.string().regex(/^[0-9a-f]{64}$/), ApprovalIdSchema]),
  release: z.tuple([jobId]),
  reject: z.tuple([jobId, z.string().max(2000)]),
  get: z.tuple([jobId]),
  claim: z.tuple([
    jobId,
    z.strictObject({ attempt, workerKid, lockHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  ]),
  markStarted: z.tuple([
    jobId,
    z.strictObject({
      attempt,
      workerId: z.string().min(1).max(128),
      workerKid,
      at: iso,
    }),
  ]),
  finish: z.tuple([
    jobId,
    signedResultSchema.extend({ stdout: z.string(), stderr: z.string() }),
    z.strictObject({
      attempt,
      workerKid,
      workerPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a base64url Ed25519 key"),
    }),
  ]),
  fail: z.tuple([jobId, z.enum(["error", "rejected"]), z.string().max(2000)]),
  events: z.tuple([jobId, z.string().max(64).nullable(), waitMs]),
  wait: z.tuple([jobId, waitMs]),
  pending: z.tuple([
    z.strictObject({ kid: z.string().min(1).max(256), subject: z.string().max(512).nullable() }),
  ]),
} as const;
type Op = keyof typeof argsByOp;

const route = createRoute({
  method: "post",
  path: "/v1/gateway/jobs/{op}",
  tags: ["jobs"],
  summary: "Job backend calls from the edge (role gateway)",
  middleware: [requireRole("gateway")] as const,
  request: {
    params: z.object({ op: z.enum(Object.keys(argsByOp) as [Op, ...Op[]]) }),
    body: {
      required: true,
      content: {
        "application/json": { schema: z.strictObject({ args: z.array(z.unknown()).max(4) }) },
      },
    },
  },
  responses: {
    200: {
      description: "the backend's answer",
      content: { "application/json": { schema: z.object({ result: z.unknown() }) } },
    },
    ...problemResponses(400, 401, 403, 429),
  },
});

export interface GatewayRouteDeps {
  backend: JobsBackend;
  keys: KeyRegistry;
  config: Pick<SigilConfig, "sandbox" | "security" | "risk">;
  audit: AuditFn;
}

export function gatewayRoutes({ backend, keys, config, audit }: GatewayRouteDeps) {
  return router().openapi(route, async (c) => {
    const { op } = c.req.valid("param");
    const parsed = argsByOp[op].safeParse(c.req.valid("json").args);
    if (!parsed.success) {
      throw new Problem(
        400,
        "validation",
        "Invalid gateway call",
        `arguments of ${op}`,
        parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
      );
    }
    const a = parsed.data;
    const signal = c.req.raw.signal;
    let result: unknown;
    switch (op) {
      case "submit":
      case "hold": {
        const [envelope, hash, approvalId] = a as z.infer<(typeof argsByOp)["hold"]>;
        const caller = await keys.get(c.get("keyid") ?? "");
        const verdict = await verifyEnvelope(
          envelope,
          envelopeChecks(
            config,
            async (kid) => (caller && kid === caller.kid ? caller.publicKey : undefined),
            verifyEd25519,
          ),
        );
        // The backend stores the envelope as verified; that is the signed one only when parsing
        // changed nothing (the jobs route signs specs with every default already applied).
        const detail = !verdict.ok
          ? `${verdict.reason}: ${verdict.detail}`
          : verdict.envelopeHash !== hash
            ? "envelopeHash does not match the envelope"
            : envelopeHash(verdict.envelope) !== hash
              ? "spec-invalid: the signed spec leaves out values its defaults fill in"
              : undefined;
        if (!verdict.ok || detail !== undefined) {
          await audit({
            eventType: "job.rejected",
            agentId: c.get("subject") ?? "gateway",
            details: { via: "gateway", detail },
          });
          throw new Problem(403, "forbidden", "Envelope refused", detail);
        }
        try {
          const signed: SignedEnvelope = {
            envelope: verdict.envelope,
            kid: verdict.kid,
            signature: verdict.signature,
          };
          // A held job (its approval lives with the edge): stored, not queued, until release.
          result =
            op === "hold" && approvalId !== undefined
              ? await backend.hold(signed, hash, approvalId)
              : await backend.submit(signed, hash);
        } catch (e) {
          // The edge answers its caller 429 too (GatewayJobsBackend).
          if (e instanceof LimitExceededError) throw rateLimited(e.message, e.retryAfterMs);
          throw e;
        }
        break;
      }
      case "release":
        result = await backend.release((a as [string])[0]);
        break;
      case "reject": {
        const [id, reason] = a as z.infer<(typeof argsByOp)["reject"]>;
        result = await backend.reject(id, reason);
        break;
      }
      case "get":
        result = await backend.get((a as [string])[0]);
        break;
      case "claim": {
        const [id, info] = a as z.infer<(typeof argsByOp)["claim"]>;
        result = await backend.claim(id, info);
        break;
      }
      case "markStarted": {
        const [id, info] = a as z.infer<(typeof argsByOp)["markStarted"]>;
        result = await backend.markStarted(id, info);
        break;
      }
      case "finish": {
        const [id, stored, claim] = a as z.infer<(typeof argsByOp)["finish"]>;
        const refuse = async (detail: string): Promise<never> => {
          await securityEvent(
            audit,
            c.get("subject") ?? "gateway",
            "job.result_refused",
            "high",
            `a forwarded job result was refused: ${detail}`,
            {
              jobId: id,
              via: "gateway",
              gatewayKid: c.get("keyid"),
              workerKid: claim.workerKid,
              attempt: claim.attempt,
            },
          );
          throw new Problem(403, "forbidden", "Result refused", detail);
        };
        const publicKey = fromBase64Url(claim.workerPublicKey);
        if (ed25519Kid(publicKey) !== claim.workerKid || stored.kid !== claim.workerKid)
          await refuse("the result's key id is not the thumbprint of the forwarded worker key");
        // A key this node knows must be an active worker key here too.
        const known = await keys.get(claim.workerKid);
        if (known && (known.role !== "worker" || !usableForNewRequest(known, Date.now())))
          await refuse(`key ${claim.workerKid} is not an active worker key`);
        const record = await backend.get(id);
        const { stdout, stderr, ...signed } = stored;
        const verdict = await verifyResult(
          signed,
          publicKey,
          verifyEd25519,
          expectationFor(id, record, { stdout, stderr }),
        );
        if (!verdict.ok) await refuse(`${verdict.reason}: ${verdict.detail}`);
        const out = await backend.finish(id, stored, claim);
        if (out.outcome === "refused")
          await refuse(`worker key ${claim.workerKid} did not claim attempt ${claim.attempt}`);
        result = out;
        break;
      }
      case "fail": {
        const [id, status, reason] = a as z.infer<(typeof argsByOp)["fail"]>;
        result = await backend.fail(id, status, reason);
        break;
      }
      case "events": {
        const [id, after, ms] = a as z.infer<(typeof argsByOp)["events"]>;
        result = await backend.events(id, after ?? undefined, ms, signal);
        break;
      }
      case "wait": {
        const [id, ms] = a as z.infer<(typeof argsByOp)["wait"]>;
        result = await backend.wait(id, ms, signal);
        break;
      }
      case "pending": {
        const [submitter] = a as z.infer<(typeof argsByOp)["pending"]>;
        result = backend.pending ? await backend.pending(submitter) : 0;
        break;
      }
    }
    return c.json({ result: result ?? null }, 200);
  });
}
