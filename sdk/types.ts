// Request and response shapes of docs/http-api.md (v1). Fields the doc leaves open are typed
// loosely (`Record<string, unknown>`) rather than guessed.

import type {
  AuditEvent,
  CheckpointView,
  ConsistencyProofView,
  InclusionProofView,
} from "../shared/audit";
import type { JobStatus } from "../shared/jobs/result";

export type { AuditEvent };

export type Role = "admin" | "agent" | "worker" | "auditor" | "gateway";

/** An Ed25519 public key as an OKP JWK (RFC 8037), or base64url raw bytes. */
export interface Ed25519Jwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid?: string;
  [k: string]: unknown;
}
export type PublicKeyInput = Ed25519Jwk | string;

export interface CreateKeyRequest {
  role: Role;
  subject: string;
  publicKey: PublicKeyInput;
  /** Admin-set groups (approver groups; policies see them as agent.groups). Default none. */
  groups?: string[];
  /** Admin-set code trust level in [0, 1]: jobs' codeTrustLevel and agent.trust. Default 0. */
  trust?: number;
  /** Quotas for this key, overriding its role's (docs/governance.md "Quotas"). */
  limits?: KeyLimits;
}
export interface KeyLimits {
  requestsPerSecond?: number;
  evaluationsPerSecond?: number;
  auditAppendsPerSecond?: number;
  queuedJobs?: number;
  runningJobs?: number;
}
export interface KidResponse {
  kid: string;
}
export interface KeyRecord {
  kid: string;
  /** `held` for an agent's service-held key (POST /v1/sign), which never signs requests. */
  role?: Role | "held";
  subject?: string;
  status?: string;
  groups?: string[];
  trust?: number;
  [k: string]: unknown;
}

export interface PolicyVersionInfo {
  name: string;
  version: number;
  sha256: string;
  [k: string]: unknown;
}
export interface PolicyDocument extends PolicyVersionInfo {
  source: string;
}

export interface EvaluateRequest {
  action: string;
  resource?: string;
  tags?: string[];
  context: Record<string, unknown>;
  /** Redeems this approval (once) for exactly this request; see docs/governance.md "Approvals". */
  approvalId?: string;
}
export type Decision = "allow" | "deny" | "allow_with_conditions" | "require_approval";
export interface EvaluateResponse {
  decision: Decision;
  enforced: boolean;
  reason?: string;
  conditions?: { name: string; value?: unknown }[];
  approver?: string;
  approvers?: string[];
  matched: { policy: string; rule: string; effect: string }[];
  policySetVersion: string | number;
  decisionId: string;
  /** The approval a require_approval opened, or the one this request redeemed or tried to. */
  approvalId?: string;
  /** Why a redemption was refused (the decision is then deny). */
  approvalRefusal?: ApprovalRefusal;
}

export type ApprovalRefusal =
  | "not-found"
  | "not-approved"
  | "denied"
  | "expired"
  | "already-redeemed"
  | "mismatch"
  | "other-caller";
export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "redeemed";
export interface Approval {
  id: string;
  status: ApprovalStatus;
  approver: string;
  approvers: string[];
  request: {
    kid: string;
    subject: string;
    action: string;
    resource: string | null;
    tags: string[];
    contextSha256: string;
    policySetVersion: string;
  };
  decisionId: string | null;
  policyReason: string | null;
  createdAt: string;
  expiresAt: string;
  decision: {
    decision: "approve" | "deny";
    by: { kid: string; subject: string };
    at: string;
    reason: string;
    redeemBy: string;
  } | null;
  expiredAt: string | null;
  redeemedAt: string | null;
}
export interface ApprovalPage {
  approvals: Approval[];
  /** Pass as `before` for the next page; null at the end. */
  next: string | null;
}

export interface VerifySignatureRequest {
  publicKey?: PublicKeyInput;
  kid?: string;
  /** base64url */
  message: string;
  /** base64url */
  signature: string;
  algorithm?: "ed25519";
}
export interface VerifySignatureResponse {
  valid: boolean;
  kid?: string;
  keyStatus?: string;
}
/**
 * A /v1/sign signature is over HELD_SIGNATURE_CONTEXT followed by the message (domain separation);
 * /v1/signatures/verify with `kid` accounts for it, given the original message.
 */
export interface SignResponse {
  signature: string;
  kid: string;
}

export interface AuditEventInput {
  eventType: string;
  agentId?: string;
  details: Record<string, unknown>;
}
export interface AuditAppendResponse {
  eventId: string;
  index: number;
  timestamp: string;
  previousHash: string;
  eventHash: string;
  signature: string;
  kid: string;
}
export interface AuditEventPage {
  events: AuditEvent[];
  next: number | string | null;
}
export interface AuditVerifyResponse {
  valid: boolean;
  checked: number;
  firstInvalid?: { index: number; reason: string };
}
/** The latest signed tree head; `checkpoint` is the whole C2SP signed note. */
export type AuditCheckpoint = CheckpointView;
/** An RFC 9162 inclusion proof; hashes are base64. */
export type InclusionProof = InclusionProofView;
/** An RFC 9162 consistency proof; hashes are base64. */
export type ConsistencyProof = ConsistencyProofView;

/**
 * Each input is a number in [0, 1] (docs/sandbox.md), the three access flags may be booleans (true = 1);
 * anything else is a 400, never a clamp.
 */
export interface RiskAssessRequest {
  dataSensitivity: number;
  codeTrustLevel: number;
  networkAccess: number | boolean;
  filesystemAccess: number | boolean;
  externalApis: number | boolean;
}
/**
 * A job's declared risk: any subset. It can only raise the score: codeTrustLevel is the submitting
 * key's admin-set trust (a lower declared value counts, a higher one does not).
 */
export type RiskDeclaration = Partial<RiskAssessRequest>;
export interface RiskAssessResponse {
  score: number;
  level: "low" | "medium" | "high";
  tier: "docker" | "gvisor";
}

export interface ToolVerifyRequest {
  toolId: string;
  domain: string;
  schema: unknown;
  signature: string;
  algorithm?: string;
}
export interface ToolVerifyResponse {
  result:
    | "trusted"
    | "first_use"
    | "signature_invalid"
    | "unknown_provider"
    | "key_pin_mismatch"
    | "key_revoked";
  fingerprint: string;
  [k: string]: unknown;
}
export interface ToolPinRequest {
  publicKeyPem: string;
  toolId?: string;
}
export type ToolPin = Record<string, unknown>;
export interface ToolReviewResponse {
  riskScore: number;
  findings: unknown[];
  recommendation: string;
  [k: string]: unknown;
}

export interface JobSpec {
  image: string;
  command?: string[];
  code?: string;
  language?: string;
  files?: Record<string, string>;
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  limits?: { memoryMb?: number; cpus?: number; pids?: number; outputBytes?: number };
  network?: {
    allow: { domain?: string; cidr?: string; ports?: number[]; protocol?: string }[];
  };
  risk?: RiskDeclaration;
}
export interface JobAccepted {
  jobId: string;
  tier: "docker" | "gvisor";
  /** The score of the inputs the server bounded (key trust, declared and derived inputs). */
  riskScore: number | null;
  /** `awaiting_approval`: held until a key of group `approver` answers approval `approvalId`. */
  status: "queued" | "awaiting_approval";
  approvalId?: string;
  approver?: string;
}
export type { JobStatus };
export interface JobResult {
  exitCode: number;
  signal?: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  workerId: string;
  resultHash: string;
  signature: string;
  kid: string;
  /** The exact body the worker signed (verify with shared/jobs/result.ts verifyResult). */
  signed: Record<string, unknown>;
}
/** A quarantine (docs/incidents.md "Quarantine"). */
export interface Quarantine {
  id: string;
  active: boolean;
  target:
    | { kind: "subject"; subject: string }
    | { kind: "key"; kid: string }
    | { kind: "worker"; workerId: string };
  reason: string;
  /** The incident it answers: set by incident response, or named by the admin who placed it. */
  incidentId?: string;
  placedBy: string;
  placedAt: string;
  liftedAt?: string;
  liftedBy?: string;
  liftReason?: string;
}
export interface JobRecord {
  status: JobStatus;
  tier: "docker" | "gvisor";
  result?: JobResult;
  [k: string]: unknown;
}
/** One page of `GET /v1/jobs`; pass `cursor` back for the next (absent on the last page). */
export interface JobPage {
  jobs: JobRecord[];
  cursor?: string;
}
/** `POST /v1/jobs/:id/cancel` (docs/http-api.md "Cancel"). */
export interface JobCancelled {
  /** cancelled: ended `killed` now · killing: its worker kills it · finished: had already ended. */
  outcome: "cancelled" | "killing" | "finished";
  job: JobRecord;
}
/** The worker's signed result report; its exact fields belong to the job envelope design. */
export type JobResultReport = Record<string, unknown>;

export interface HealthResponse {
  status?: string;
  [k: string]: unknown;
}
export interface JwkSet {
  keys: (Ed25519Jwk & { status?: string; notBefore?: string; notAfter?: string })[];
}

/** A framework as GET /v1/compliance/frameworks lists it (docs/compliance.md). */
export interface ComplianceFrameworkSummary {
  id: string;
  name: string;
  version: string;
  controls: { id: string; reference: string; title: string; check: string }[];
}
