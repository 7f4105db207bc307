// Request and response shapes of HTTP-API.md (v1). Fields the doc leaves open are typed loosely
// (`Record<string, unknown>`) rather than guessed.

import type { JobStatus } from "../shared/jobs/result";

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
  /** Quotas for this key, overriding its role's (GOVERNANCE.md "Quotas"). */
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
  role?: Role;
  subject?: string;
  status?: string;
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
}
export type Decision = "allow" | "deny" | "allow_with_conditions" | "require_approval";
export interface EvaluateResponse {
  decision: Decision;
  enforced: boolean;
  reason?: string;
  conditions?: { name: string; value?: unknown }[];
  approver?: string;
  matched: { policy: string; rule: string; effect: string }[];
  policySetVersion: string | number;
  decisionId: string;
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
export type AuditEvent = AuditAppendResponse & {
  eventType: string;
  agentId?: string;
  details: Record<string, unknown>;
  [k: string]: unknown;
};
export interface AuditEventPage {
  events: AuditEvent[];
  next: number | string | null;
}
export interface AuditVerifyResponse {
  valid: boolean;
  checked: number;
  firstInvalid?: { index: number; reason: string };
}
export interface AuditCheckpoint {
  treeSize: number;
  rootHash: string;
  timestamp: string;
  signature: string;
  kid: string;
  [k: string]: unknown;
}
export type AuditProof = Record<string, unknown>;

/** Each input is a number in [0, 1] (SANDBOX.md); anything else is a 400, never a clamp. */
export interface RiskAssessRequest {
  dataSensitivity: number;
  codeTrustLevel: number;
  networkAccess: number;
  filesystemAccess: number;
  externalApis: number;
}
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
  risk?: RiskAssessRequest;
}
export interface JobAccepted {
  jobId: string;
  tier: "docker" | "gvisor";
  /** null when the job came without a risk assessment. */
  riskScore: number | null;
  status: "queued";
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
}
export interface JobRecord {
  status: JobStatus;
  tier: "docker" | "gvisor";
  result?: JobResult;
  [k: string]: unknown;
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
