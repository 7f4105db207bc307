// The policy engine: versioned documents in a store port, the compiled set they make, an
// LRU decision cache and batch evaluation. A new version is compiled before it is swapped
// in, so the next evaluation sees it whole, and a document that fails to parse changes nothing.
import { LRUCache } from "lru-cache";
import { canonicalJson, sha256Hex } from "../encoding";
import { inSpan, inSpanSync } from "../tracing";
import type { PolicyDocument } from "./ast";
import { type CompiledDocument, compileDocument, type EvaluationLimits } from "./compile";
import { DEFAULT_LIMITS, PolicyError, type PolicyLimits } from "./errors";
import {
  DEFAULT_EVALUATION_LIMITS,
  type EvaluationUsage,
  PolicySet,
  policySetVersion,
} from "./evaluate";
import { parse } from "./parser";
import {
  type Decision,
  type EvaluationRequest,
  type PolicyConfig,
  PolicyConfigSchema,
  PolicyNameSchema,
  type PolicyRecord,
  type PolicyVersionInfo,
} from "./schema";
import type { PolicyStorePort } from "./store";

export interface DecisionCacheOptions {
  /** Entries kept (default 10,000). */
  max?: number;
  /** Total characters of keys kept (default 32 Mi); bounds memory for large contexts. */
  maxSize?: number;
}

export interface PolicyEngineOptions {
  store: PolicyStorePort;
  config?: Partial<PolicyConfig>;
  limits?: Partial<PolicyLimits>;
  /** `false` disables the decision cache. */
  cache?: DecisionCacheOptions | false;
  /** Adds a `decisionId` to every decision (e.g. a UUIDv7); cached decisions get a fresh id. */
  decisionId?: () => string;
  now?: () => Date;
  /** Work and time one evaluation may spend (the clock is injectable: shared/ reads none itself). */
  evaluation?: Partial<EvaluationLimits>;
  /** Lets other work run between slices of a batch (default: a macrotask, setTimeout 0). */
  yieldToLoop?: () => Promise<void>;
}

/** A batch yields to the event loop after this long (or this much work) since it last did. */
const BATCH_SLICE_MS = 4;

// Evaluation is synchronous, so one scratch record serves every caller that passes none.
const scratchUsage: EvaluationUsage = { work: 0, timedOut: false };

const macrotask = (): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, 0);
  });

export type ErrorItem = { line: number; column: number; message: string };

export type PutResult =
  | { ok: true; name: string; version: number; sha256: string; unchanged: boolean }
  | { ok: false; errors: ErrorItem[] };

export type RollbackResult =
  | { ok: true; record: PolicyRecord }
  | { ok: false; reason: "not_found" }
  | { ok: false; reason: "invalid"; errors: ErrorItem[] };

export interface PolicySummary {
  name: string;
  version: number;
  sha256: string;
  createdAt: string;
  /** The `policy` blocks the document defines. */
  policies: string[];
}

export class PolicyNameError extends Error {
  override readonly name = "PolicyNameError";
}

interface Loaded {
  sha256: string;
  source: string;
  doc: PolicyDocument;
  compiled: CompiledDocument;
}

export class PolicyEngine {
  private readonly store: PolicyStorePort;
  private readonly config: PolicyConfig;
  private readonly limits: PolicyLimits;
  private readonly cache: LRUCache<string, Decision> | null;
  private readonly decisionId: (() => string) | undefined;
  private readonly now: () => Date;
  private readonly evaluation: EvaluationLimits;
  private readonly yieldToLoop: () => Promise<void>;
  private set: PolicySet | null = null;
  private failure: string | null = "policy set not loaded";
  private revision = -1;
  private loaded = new Map<string, Loaded>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: PolicyEngineOptions) {
    this.store = opts.store;
    this.config = PolicyConfigSchema.parse(opts.config ?? {});
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.decisionId = opts.decisionId;
    this.now = opts.now ?? (() => new Date());
    this.evaluation = { ...DEFAULT_EVALUATION_LIMITS, ...opts.evaluation };
    this.yieldToLoop = opts.yieldToLoop ?? macrotask;
    this.cache =
      opts.cache === false
        ? null
        : new LRUCache<string, Decision>({
            max: opts.cache?.max ?? 10_000,
            maxSize: opts.cache?.maxSize ?? 32 * 1024 * 1024,
            sizeCalculation: (_v, k) => Math.max(1, k.length),
          });
  }

  /** Creates an engine and loads the store's current documents. */
  static async create(opts: PolicyEngineOptions): Promise<PolicyEngine> {
    const engine = new PolicyEngine(opts);
    await engine.reload();
    return engine;
  }

  get policySetVersion(): string {
    return this.set?.version ?? "unavailable";
  }

  get mode(): PolicyConfig["mode"] {
    return this.config.mode;
  }

  /** The compiled set currently serving (null until loaded or after a failed load). */
  get current(): PolicySet | null {
    return this.set;
  }

  // ---- documents ------------------------------------------------------------

  async put(name: string, source: string): Promise<PutResult> {
    this.checkName(name);
    try {
      const doc = parse(source, this.limits);
      compileDocument(name, doc, { levels: this.config.classificationLevels });
    } catch (e) {
      return { ok: false, errors: errorItems(e) };
    }
    const sha256 = sha256Hex(source);
    const cur = await this.store.get(name);
    if (cur && cur.sha256 === sha256) {
      await this.reload();
      return { ok: true, name, version: cur.version, sha256, unchanged: true };
    }
    const version = await this.store.put(name, {
      source,
      sha256,
      createdAt: this.now().toISOString(),
    });
    await this.reload();
    return { ok: true, name, version, sha256, unchanged: false };
  }

  async get(name: string, version?: number): Promise<PolicyRecord | null> {
    this.checkName(name);
    return this.store.get(name, version);
  }

  async versions(name: string): Promise<PolicyVersionInfo[]> {
    this.checkName(name);
    return this.store.versions(name);
  }

  async list(): Promise<PolicySummary[]> {
    const snap = await this.store.snapshot();
    return snap.documents.map((r) => {
      const l = this.loaded.get(r.name);
      let policies: string[] = [];
      if (l && l.sha256 === r.sha256) policies = l.doc.policies.map((p) => p.name);
      else {
        try {
          policies = parse(r.source, this.limits).policies.map((p) => p.name);
        } catch {
          policies = [];
        }
      }
      return {
        name: r.name,
        version: r.version,
        sha256: r.sha256,
        createdAt: r.createdAt,
        policies,
      };
    });
  }

  /** Makes an earlier version current. The version must still verify and parse. */
  async rollback(name: string, version: number): Promise<RollbackResult> {
    this.checkName(name);
    const rec = await this.store.get(name, version);
    if (!rec) return { ok: false, reason: "not_found" };
    try {
      this.verify(rec);
    } catch (e) {
      return { ok: false, reason: "invalid", errors: errorItems(e) };
    }
    if (!(await this.store.setCurrent(name, version))) return { ok: false, reason: "not_found" };
    await this.reload();
    return { ok: true, record: rec };
  }

  async delete(name: string): Promise<boolean> {
    this.checkName(name);
    const removed = await this.store.delete(name);
    await this.reload();
    return removed;
  }

  /**
   * Re-reads the store if its revision changed (other nodes may have written) and swaps in
   * the new set. A document that fails verification leaves the engine failing closed.
   */
  reload(): Promise<void> {
    const run = this.queue.then(() => this.load());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<void> {
    let snap: Awaited<ReturnType<PolicyStorePort["snapshot"]>>;
    try {
      if (this.set && (await this.store.revision()) === this.revision) return;
      snap = await this.store.snapshot();
    } catch (e) {
      this.fail(`policy store unavailable: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
    const next = new Map<string, Loaded>();
    try {
      for (const rec of snap.documents) {
        const prev = this.loaded.get(rec.name);
        // Reuse only what is byte-identical to what was verified before.
        if (prev && prev.sha256 === rec.sha256 && prev.source === rec.source) {
          next.set(rec.name, prev);
          continue;
        }
        const doc = this.verify(rec);
        const compiled = compileDocument(rec.name, doc, {
          levels: this.config.classificationLevels,
        });
        next.set(rec.name, { sha256: rec.sha256, source: rec.source, doc, compiled });
      }
    } catch (e) {
      this.fail(`stored policy invalid: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
    const docs = snap.documents.map((r) => ({ name: r.name, sha256: r.sha256 }));
    const set = new PolicySet(
      snap.documents.map((r) => next.get(r.name)!.compiled),
      policySetVersion(docs),
      this.config.mode,
      this.evaluation,
    );
    // One assignment: evaluations see either the old set or the new one, never a mix.
    this.set = set;
    this.loaded = next;
    this.revision = snap.revision;
    this.failure = null;
    this.cache?.clear();
  }

  private verify(rec: PolicyRecord): PolicyDocument {
    // Redis is not trusted: a stored document must still match its hash and parse.
    if (sha256Hex(rec.source) !== rec.sha256) {
      throw new Error(`document '${rec.name}' version ${rec.version} does not match its sha256`);
    }
    return parse(rec.source, this.limits);
  }

  private fail(reason: string): void {
    this.set = null;
    this.failure = reason;
    this.revision = -1;
    this.cache?.clear();
  }

  private checkName(name: string): void {
    if (!PolicyNameSchema.safeParse(name).success) {
      throw new PolicyNameError(
        "invalid policy name: 1-128 of A-Z a-z 0-9 _ . - (not starting with _ . -)",
      );
    }
  }

  // ---- evaluation -------------------------------------------------------------

  /** `usage`, when given, receives the work the evaluation was charged. */
  evaluate(req: EvaluationRequest, usage?: EvaluationUsage): Decision {
    return inSpanSync("sigil.evaluate", () => this.evaluateWith(this.set, req, usage));
  }

  /** Evaluates every request against one policy-set version, in order. */
  evaluateBatch(reqs: readonly EvaluationRequest[]): Decision[] {
    const set = this.set;
    return reqs.map((r) => this.evaluateWith(set, r));
  }

  /**
   * evaluateBatch for a server: the same decisions against one policy-set version, but it
   * yields to the event loop between slices (BATCH_SLICE_MS, or one evaluation's work budget),
   * so one large batch never stalls other requests for longer than about one slice.
   */
  evaluateBatchYielding(reqs: readonly EvaluationRequest[]): Promise<Decision[]> {
    return inSpan("sigil.evaluate", () => this.#evaluateBatchYielding(reqs), {
      attributes: { "sigil.evaluate.batch_size": reqs.length },
    });
  }

  async #evaluateBatchYielding(reqs: readonly EvaluationRequest[]): Promise<Decision[]> {
    const set = this.set;
    const { clock, maxWork } = this.evaluation;
    const out: Decision[] = [];
    const usage: EvaluationUsage = { work: 0, timedOut: false };
    let work = 0;
    let since = clock ? clock() : 0;
    for (const r of reqs) {
      usage.work = 0;
      usage.timedOut = false;
      out.push(this.evaluateWith(set, r, usage));
      work += usage.work;
      // Work is counted too: some runtimes (workerd) do not advance the clock while running.
      if (work >= maxWork || (clock && clock() - since >= BATCH_SLICE_MS)) {
        await this.yieldToLoop();
        work = 0;
        if (clock) since = clock();
      }
    }
    return out;
  }

  private evaluateWith(
    set: PolicySet | null,
    req: EvaluationRequest,
    usage: EvaluationUsage = scratchUsage,
  ): Decision {
    if (!set) return this.withId(this.failClosed(this.failure ?? "policy set not loaded"));
    if (
      req === null ||
      typeof req !== "object" ||
      typeof req.action !== "string" ||
      req.context === null ||
      typeof req.context !== "object" ||
      Array.isArray(req.context)
    ) {
      return this.withId(this.failClosed("invalid evaluation request", set.version));
    }
    let key: string | undefined;
    if (this.cache) {
      try {
        key = `${set.version}\u0000${canonicalJson(req)}`;
      } catch {
        key = undefined;
      }
      const hit = key === undefined ? undefined : this.cache.get(key);
      if (hit) return this.withId(hit);
    }
    let d: Decision;
    try {
      d = set.evaluate(req, usage);
    } catch (e) {
      return this.withId(
        this.failClosed(
          `internal evaluation error: ${e instanceof Error ? e.name : "unknown"}`,
          set.version,
        ),
      );
    }
    // Frozen so no caller can alter what later callers will be served. A decision the time
    // limit cut short depends on load, not on the request: it is not kept.
    if (key !== undefined && !usage.timedOut) this.cache!.set(key, deepFreeze(d));
    return this.withId(d);
  }

  private failClosed(reason: string, version = "unavailable"): Decision {
    return {
      decision: "deny",
      enforced: this.config.mode === "strict",
      reason,
      matched: [],
      policySetVersion: version,
    };
  }

  private withId(d: Decision): Decision {
    return this.decisionId ? { ...d, decisionId: this.decisionId() } : d;
  }
}

function errorItems(e: unknown): ErrorItem[] {
  if (e instanceof PolicyError) return e.toJSON();
  return [{ line: 1, column: 1, message: e instanceof Error ? e.message : String(e) }];
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
