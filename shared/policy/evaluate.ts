// The decision procedure of docs/policy-language.md over a compiled, indexed policy set.
// Evaluation is synchronous and touches only rules whose target can match the request.

import { canonicalJson, sha256Hex } from "../encoding";
import type { PolicyDocument } from "./ast";
import {
  type CompiledDocument,
  type CompiledPolicy,
  type CompiledRule,
  compileDocument,
  type Env,
  EvalFailure,
  type EvaluationLimits,
  kindOf,
  newEnv,
  type Obligation,
} from "./compile";
import type {
  Condition,
  Decision,
  EnforcementMode,
  EvaluationRequest,
  MatchedRule,
  RuleProblem,
} from "./schema";
import { DEFAULT_CLASSIFICATION_LEVELS } from "./schema";

/**
 * Work units one evaluation may spend (see EvaluationLimits): a few milliseconds of the
 * costliest work per unit. More is an evaluation error, so the request is denied.
 */
export const EVAL_BUDGET = 100_000;

/** Web-standard monotonic clock where the runtime has one (Node and workerd do). */
const defaultClock: (() => number) | null =
  typeof performance === "object" && typeof performance.now === "function"
    ? () => performance.now()
    : null;

export const DEFAULT_EVALUATION_LIMITS: EvaluationLimits = {
  maxWork: EVAL_BUDGET,
  // A backstop only: the work budget ends a hostile evaluation well before this.
  maxMs: 100,
  clock: defaultClock,
};

/** What one evaluation spent; filled in by `evaluate` when the caller passes one. */
export interface EvaluationUsage {
  /** Work units charged (at most the limit: an operation over budget is not run). */
  work: number;
  /** The time limit ended it: the decision depends on load, so it is not cached. */
  timedOut: boolean;
}

export interface PolicySetOptions {
  mode?: EnforcementMode;
  /** Lowest first; default public < internal < confidential < secret < top_secret. */
  classificationLevels?: readonly string[];
  evaluation?: Partial<EvaluationLimits>;
}

export interface NamedDocument {
  /** Store key of the document. */
  name: string;
  /** Hash of the source; the set version is derived from these. */
  sha256: string;
  doc: PolicyDocument;
}

// Marks rules and policies already visited in the current evaluation (no per-call Set).
let stampCounter = 0;

/**
 * The version of a policy set: a hash over the (name, sha256) of its documents, so the
 * same content always has the same version, on every node.
 */
export function policySetVersion(docs: readonly { name: string; sha256: string }[]): string {
  const entries = docs.map((d) => [d.name, d.sha256]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  return sha256Hex(canonicalJson(entries)).slice(0, 32);
}

export class PolicySet {
  readonly version: string;
  readonly mode: EnforcementMode;
  readonly documents: readonly CompiledDocument[];
  readonly limits: EvaluationLimits;
  private readonly byAction = new Map<string, CompiledRule[]>();
  private readonly byTag = new Map<string, CompiledRule[]>();
  private readonly wildcard: CompiledRule[] = [];
  /** byAction merged with wildcard, per action: the whole candidate list for untagged requests. */
  private readonly actionCandidates = new Map<string, CompiledRule[]>();

  constructor(
    documents: readonly CompiledDocument[],
    version: string,
    mode: EnforcementMode,
    limits: Partial<EvaluationLimits> = {},
  ) {
    this.documents = documents;
    this.version = version;
    this.mode = mode;
    this.limits = { ...DEFAULT_EVALUATION_LIMITS, ...limits };
    for (const d of documents) {
      for (const p of d.policies) {
        for (const r of p.rules) {
          const t = r.target;
          if (!t) continue;
          if (t.name === "*") this.wildcard.push(r);
          else {
            push(this.byAction, t.name, r);
            if (t.resource === undefined) push(this.byTag, t.name, r);
          }
        }
      }
    }
    for (const [action, rules] of this.byAction) {
      this.actionCandidates.set(action, [...rules, ...this.wildcard]);
    }
  }

  /** Number of indexed rules a request could touch (for tests of the index). */
  candidateCount(req: Pick<EvaluationRequest, "action" | "tags">): number {
    return this.candidates(req.action, req.tags).length;
  }

  private candidates(action: string, tags: readonly string[] | undefined): readonly CompiledRule[] {
    const base = this.actionCandidates.get(action) ?? this.wildcard;
    if (!tags || tags.length === 0) return base;
    let extra: CompiledRule[] | undefined;
    for (const tag of tags) {
      const rules = this.byTag.get(tag);
      if (!rules) continue;
      extra ??= [];
      for (const r of rules) extra.push(r);
    }
    if (!extra) return base;
    const stamp = ++stampCounter;
    const out: CompiledRule[] = [];
    for (const r of base) {
      r.stamp = stamp;
      out.push(r);
    }
    for (const r of extra) {
      if (r.stamp === stamp) continue;
      r.stamp = stamp;
      out.push(r);
    }
    return out;
  }

  evaluate(req: EvaluationRequest, usage?: EvaluationUsage): Decision {
    const { action, resource } = req;
    const env = newEnv(req.context, this.limits);
    const stamp = ++stampCounter;
    const o: Outcome = {
      denies: [],
      errors: [],
      grants: [],
      unmet: [],
      blocking: [],
      targeted: [],
    };
    const cands = this.candidates(action, req.tags);
    for (let i = 0; i < cands.length; i++) {
      const r = cands[i]!;
      const t = r.target!;
      // The index guarantees the action/tag half of the match; the resource is checked here.
      if (t.resource !== undefined && t.resource !== "*") {
        if (t.resource !== resource || (t.name !== "*" && t.name !== action)) continue;
      } else if (t.resource === "*" && t.name !== "*" && t.name !== action) continue;
      if (r.kind === "require") {
        // Unmet `require ... for` items block even a granted allow.
        if (runChecks(r, env, o, true)) o.targeted.push(r);
        continue;
      }
      if (r.condition) {
        let v: unknown;
        try {
          v = r.condition(env);
          if (v !== true && v !== false) {
            throw new EvalFailure(`condition must be a boolean, found ${kindOf(v)}`);
          }
        } catch (e) {
          o.errors.push([r, message(e)]);
          continue;
        }
        if (!v) continue;
      }
      if (r.kind === "deny") {
        o.denies.push(r);
        continue;
      }
      const p = r.owner!;
      if (p.stamp !== stamp) {
        // A policy's untargeted requirements are checked once per evaluation.
        p.stamp = stamp;
        let ok = true;
        for (const q of p.requires) if (!runChecks(q, env, o, false)) ok = false;
        p.memo = ok ? "ok" : "unmet";
      }
      if (p.memo === "ok") o.grants.push(r);
    }
    if (usage) {
      usage.work = Math.min(this.limits.maxWork, this.limits.maxWork - env.budget);
      usage.timedOut = env.timedOut;
    }
    return this.decide(req, o);
  }

  private decide(req: EvaluationRequest, o: Outcome): Decision {
    const { denies, errors, grants, unmet, blocking, targeted } = o;
    const base = { enforced: this.mode === "strict", policySetVersion: this.version };
    const unmetList = unmet.length > 0 ? problems(unmet) : undefined;
    const errorList = errors.length > 0 ? problems(errors) : undefined;
    const extras = {
      ...(unmetList ? { unmet: unmetList } : {}),
      ...(errorList ? { errors: errorList } : {}),
    };
    if (denies.length > 0) {
      const matched = sortRules(denies).map((r) => match(r, "deny"));
      return {
        decision: "deny",
        ...base,
        reason: `denied by ${matched.map(label).join("; ")}`,
        matched,
        ...extras,
      };
    }
    if (errorList) {
      const rules = errors.map(([r]) => r);
      return {
        decision: "deny",
        ...base,
        reason: `evaluation error (fail closed): ${errorList.map((e) => `${label(e)}: ${e.message}`).join("; ")}`,
        matched: uniqueSorted(rules).map((r) => match(r, "error")),
        ...extras,
      };
    }
    const subject = req.resource === undefined ? req.action : `${req.action}(${req.resource})`;
    const unmetText = unmetList
      ? `; unmet requirement${unmetList.length > 1 ? "s" : ""}: ${unmetList.map((u) => `${label(u)}: ${u.message}`).join("; ")}`
      : "";
    if (grants.length === 0) {
      return {
        decision: "deny",
        ...base,
        reason: `no policy allows ${subject}${unmetText}`,
        matched: [],
        ...extras,
      };
    }
    if (blocking.length > 0) {
      const rules = blocking.map(([r]) => r);
      return {
        decision: "deny",
        ...base,
        reason: `${subject} is allowed but a requirement is not met${unmetText}`,
        matched: uniqueSorted(rules).map((r) => match(r, "require")),
        ...extras,
      };
    }
    const granted = sortRules(grants);
    const contributing: CompiledRule[] = [];
    const obligations: Obligation[] = [];
    const seenPolicies = new Set<CompiledPolicy>();
    for (const r of granted) {
      const p = r.owner!;
      if (seenPolicies.has(p)) continue;
      seenPolicies.add(p);
      for (const q of p.requires) {
        if (q.obligations.length === 0) continue;
        contributing.push(q);
        obligations.push(...q.obligations);
      }
    }
    for (const q of targeted) {
      if (q.obligations.length === 0) continue;
      contributing.push(q);
      obligations.push(...q.obligations);
    }
    const matched = [
      ...granted.map((r) => match(r, "allow")),
      ...uniqueSorted(contributing).map((r) => match(r, "require")),
    ];
    const conditions = normalizeConditions(obligations);
    const approvers = [
      ...new Set(
        conditions.map((c) => /^(.+)_approval$/.exec(c.name)?.[1]).filter((x): x is string => !!x),
      ),
    ].sort();
    const reason = `allowed by ${granted.map((r) => label(match(r, "allow"))).join("; ")}`;
    if (approvers.length > 0) {
      return {
        decision: "require_approval",
        ...base,
        reason: `${reason}; approval required from ${approvers.join(", ")}`,
        conditions,
        approver: approvers[0]!,
        approvers,
        matched,
      };
    }
    if (conditions.length > 0) {
      return { decision: "allow_with_conditions", ...base, reason, conditions, matched };
    }
    return { decision: "allow", ...base, reason, matched };
  }
}

interface Outcome {
  denies: CompiledRule[];
  errors: [CompiledRule, string][];
  grants: CompiledRule[];
  unmet: [CompiledRule, string][];
  blocking: [CompiledRule, string][];
  targeted: CompiledRule[];
}

/** Runs a require rule's expression items; true when all hold. */
function runChecks(r: CompiledRule, env: Env, o: Outcome, blocks: boolean): boolean {
  let ok = true;
  for (const c of r.checks) {
    let v: unknown;
    try {
      v = c.fn(env);
      if (v !== true && v !== false) {
        throw new EvalFailure(`${c.text}: requirement must be a boolean, found ${kindOf(v)}`);
      }
    } catch (e) {
      o.errors.push([r, message(e)]);
      ok = false;
      continue;
    }
    if (!v) {
      o.unmet.push([r, c.text]);
      if (blocks) o.blocking.push([r, c.text]);
      ok = false;
    }
  }
  return ok;
}

function message(e: unknown): string {
  if (e instanceof EvalFailure) return e.message;
  // A host error (e.g. stack exhaustion) is still an evaluation error: fail closed.
  if (e instanceof Error) return `internal error: ${e.name}`;
  return "internal error";
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function compareRules(a: CompiledRule, b: CompiledRule): number {
  if (a.document !== b.document) return a.document < b.document ? -1 : 1;
  if (a.policy !== b.policy) return a.policy < b.policy ? -1 : 1;
  return a.index - b.index;
}

const sortRules = (rs: CompiledRule[]): CompiledRule[] =>
  rs.length > 1 ? [...rs].sort(compareRules) : rs;

function uniqueSorted(rs: CompiledRule[]): CompiledRule[] {
  return sortRules([...new Set(rs)]);
}

function match(r: CompiledRule, effect: MatchedRule["effect"]): MatchedRule {
  return { document: r.document, policy: r.policy, rule: r.rule, effect };
}

const label = (m: { policy: string; rule: string }): string => `${m.policy}: ${m.rule}`;

function problems(list: [CompiledRule, string][]): RuleProblem[] {
  return list
    .map(([r, message]) => ({ r, message }))
    .sort(
      (a, b) =>
        compareRules(a.r, b.r) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
    )
    .map(({ r, message }) => ({ document: r.document, policy: r.policy, rule: r.rule, message }));
}

function normalizeConditions(obligations: Obligation[]): Condition[] {
  const byKey = new Map<string, Condition>();
  for (const o of obligations) {
    const key = canonicalJson([o.name, o.value === undefined ? [] : [o.value]]);
    if (!byKey.has(key))
      byKey.set(key, o.value === undefined ? { name: o.name } : { name: o.name, value: o.value });
  }
  return [...byKey.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([, c]) => c);
}

/** Compiles parsed documents into an evaluable set. */
export function buildPolicySet(
  docs: readonly NamedDocument[],
  opts: PolicySetOptions = {},
): PolicySet {
  const levels = opts.classificationLevels ?? DEFAULT_CLASSIFICATION_LEVELS;
  const compiled = docs.map((d) => compileDocument(d.name, d.doc, { levels }));
  return new PolicySet(compiled, policySetVersion(docs), opts.mode ?? "strict", opts.evaluation);
}
