// The sandbox driver: validates a job, picks a warm container (or creates one), runs the job
// once, removes the container. Pools are keyed by the full create-time shape, and only the
// configured (image, tier) pools with default limits exist: memory, cpus and pids are fixed when
// a container is created (and runsc cannot update them later), so a job with non-default limits
// gets a cold container created for it. Timeout and output cap are per job and never force cold.
import { randomUUID } from "node:crypto";
import Docker from "dockerode";
import {
  type ContainerNetwork,
  LABEL,
  type SandboxConfig,
  type SandboxOptionsInput,
  SandboxOptionsSchema,
  shapeKey,
  shapeOf,
} from "./config";
import { type Prepared, prepareContainer, runInContainer } from "./container";
import { OomWatch } from "./oom-watch";
import { formatOwner, liveness, type Owner, parseOwner, selfOwner } from "./owner";
import { buildJobArchive } from "./payload";
import { type PoolInfo, WarmPool } from "./pool";
import {
  DEFAULT_LIMITS,
  errorResult,
  type JobResult,
  type JobSpec,
  JobSpecSchema,
  SandboxClosedError,
  type SandboxEvent,
  SandboxSpecError,
  type Tier,
} from "./types";

export interface RunOptions {
  /** Aborting kills the job; it ends with status "killed". */
  signal?: AbortSignal;
  /** A job with egress: a cold container on this network (worker/egress/network.ts). */
  network?: ContainerNetwork;
}

export interface ShutdownOptions {
  /** How long running jobs may continue before they are killed (default 10 s). */
  graceMs?: number;
}

const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class Sandbox {
  readonly config: SandboxConfig;
  /** Distinguishes this process's containers from an earlier run of the same worker. */
  readonly runId = randomUUID();
  /** This process, on every container it creates (owner.ts): leftovers of a dead one are found. */
  private readonly owner = selfOwner();
  private readonly docker: Docker;
  private readonly oomWatch: OomWatch;
  private readonly onEvent: (e: SandboxEvent) => void;
  private readonly pools = new Map<string, WarmPool>();
  private readonly running = new Map<string, AbortController>();
  private readonly removals = new Set<Promise<void>>();
  private closing = false;

  constructor(options: SandboxOptionsInput) {
    const { docker, onEvent, ...rest } = options;
    const parsed = SandboxOptionsSchema.safeParse(rest);
    if (!parsed.success)
      throw new SandboxSpecError(`invalid sandbox options: ${z4msg(parsed.error)}`);
    this.config = parsed.data;
    this.docker = docker ?? new Docker();
    this.oomWatch = new OomWatch(this.docker, this.config.workerId);
    // Subscribed up front, never awaited on a job's path; until it answers, OOMKilled alone decides.
    void this.oomWatch.start();
    this.onEvent = onEvent ?? (() => {});
    for (const p of this.config.pools) {
      if (!this.config.images.includes(p.image)) {
        throw new SandboxSpecError(`pool image ${p.image} is not on the image allow-list`);
      }
      const shape = shapeOf(p.image, p.tier, { ...DEFAULT_LIMITS });
      const key = shapeKey(shape);
      if (this.pools.has(key)) throw new SandboxSpecError(`duplicate pool ${p.image}/${p.tier}`);
      this.pools.set(
        key,
        new WarmPool({
          key: `${p.image}/${p.tier}`,
          size: p.size,
          max: p.max ?? p.size,
          maxCreating: this.config.poolMaxCreating,
          idleMs: this.config.poolIdleMs,
          prepare: () => prepareContainer(this.docker, this.config, shape, this.labels("", "warm")),
          discard: (c) => this.remove(c),
          onEvent: this.onEvent,
        }),
      );
    }
  }

  private labels(job: string, pool: "warm" | "cold") {
    return {
      job,
      pool,
      run: this.runId,
      ...(this.owner ? { owner: formatOwner(this.owner) } : {}),
    };
  }

  /** Fill every pool up to its floor; resolves once they are filled (or creation failed). */
  async warm(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.warm()));
  }

  /** Idle warm containers per pool, keyed "image/tier". */
  poolStats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.pools.values()) out[p.name] = p.available;
    return out;
  }

  /** Each pool's idle, creating and waiting counts, its current target and its cap. */
  poolInfo(): Record<string, PoolInfo> {
    const out: Record<string, PoolInfo> = {};
    for (const p of this.pools.values()) out[p.name] = p.info();
    return out;
  }

  /** Validate a spec against the schema and the configuration; throws SandboxSpecError. */
  parseSpec(input: unknown): JobSpec {
    const parsed = JobSpecSchema.safeParse(input);
    if (!parsed.success) throw new SandboxSpecError(`invalid job spec: ${z4msg(parsed.error)}`);
    const spec = parsed.data;
    if (!this.config.images.includes(spec.image)) {
      throw new SandboxSpecError(`image ${spec.image} is not on the allow-list`);
    }
    return spec;
  }

  /**
   * Run one job in a fresh container (warm if one fits). Throws SandboxSpecError for an invalid
   * or disallowed spec (nothing ran) and SandboxClosedError after shutdown(); every other
   * failure is a result with status "error".
   */
  async runJob(input: unknown, opts: RunOptions = {}): Promise<JobResult> {
    if (this.closing) throw new SandboxClosedError();
    const spec = this.parseSpec(input);
    const archive = buildJobArchive(spec, this.config.maxPayloadBytes);
    // No await before the job is registered: shutdown() must see every job it has to abort.
    const ac = new AbortController();
    const token = randomUUID();
    this.running.set(token, ac);
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    let prepared: Prepared | undefined;
    const shape = shapeOf(spec.image, spec.tier, spec.limits);
    // A warm container has no network; a job with egress always gets a cold one on its own.
    const pool = opts.network ? undefined : this.pools.get(shapeKey(shape));
    try {
      // The pool starts replacements on take (pool.ts); it may wait for one under creation.
      prepared = await pool?.take();
      if (prepared) {
        // Labels are fixed at create; the name records which job a warm container served.
        prepared.container
          .rename({ name: `sigil-job-${spec.jobId}-${token.slice(0, 8)}` })
          .catch(() => {});
      } else {
        prepared = await prepareContainer(
          this.docker,
          this.config,
          shape,
          this.labels(spec.jobId, "cold"),
          `sigil-job-${spec.jobId}-${token.slice(0, 8)}`,
          opts.network,
        );
      }
      return await runInContainer(prepared, spec, archive, {
        killGraceMs: this.config.killGraceMs,
        signal,
        oomSeen: (id) => this.oomWatch.saw(id),
      });
    } catch (e) {
      return errorResult(spec, `sandbox failure: ${errMsg(e)}`, prepared);
    } finally {
      this.running.delete(token);
      // A job network can be removed only once no container is attached to it: such a job waits
      // for its container's removal (others return at once and it goes on in the background).
      const removal = prepared ? this.remove(prepared) : undefined;
      if (opts.network) await removal;
    }
  }

  /**
   * Remove containers left behind: this worker's from an earlier run (not this run's), and any
   * sandbox container on the host whose creating process is provably gone (a worker that was
   * SIGKILLed, whatever its id). A live process's containers are never touched.
   */
  async cleanupOrphans(): Promise<number> {
    const opts = { docker: this.docker, exceptRunId: this.runId, self: this.owner };
    const n = (await cleanupOrphans(this.config.workerId, opts)) + (await cleanupDeadOwners(opts));
    if (n > 0)
      this.onEvent({ type: "orphans.removed", message: `removed ${n} orphaned containers` });
    return n;
  }

  /**
   * Stop the warm pools and remove their idle containers at once (they run no job); running jobs
   * go on, and a job that starts now gets a cold container. The first step of a shutdown, so a
   * supervisor's kill after its own grace period finds no idle container to leave behind.
   */
  async drainPools(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    await Promise.all([...this.removals]);
  }

  /** Stop taking jobs, let running ones finish up to graceMs, then kill them; remove everything. */
  async shutdown(opts: ShutdownOptions = {}): Promise<void> {
    this.closing = true;
    this.oomWatch.close();
    await this.drainPools();
    const graceMs = opts.graceMs ?? 10_000;
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const ac of this.running.values()) ac.abort();
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 50));
    await Promise.all([...this.removals]);
    // Whatever a failed removal or a race left: every container of this run, by its label.
    await removeAll(this.docker, [`${LABEL.run}=${this.runId}`]).catch((e: unknown) =>
      this.onEvent({ type: "container.remove_failed", message: errMsg(e) }),
    );
  }

  private remove(p: Prepared): Promise<void> {
    p.socket.destroy();
    const job = p.container
      .remove({ force: true, v: true })
      .then(
        () => {},
        (e: unknown) => {
          // 404: already gone. Anything else is left for cleanupOrphans at the next start.
          if ((e as { statusCode?: number }).statusCode === 404) return;
          this.onEvent({ type: "container.remove_failed", message: errMsg(e), containerId: p.id });
        },
      )
      .finally(() => this.removals.delete(job));
    this.removals.add(job);
    return job;
  }
}

function z4msg(err: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }) {
  return err.issues
    .map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`)
    .join("; ");
}

async function removeAll(docker: Docker, labels: string[]): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: labels } });
  return removeContainers(docker, list);
}

async function removeContainers(docker: Docker, list: Docker.ContainerInfo[]): Promise<number> {
  const results = await Promise.allSettled(
    list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })),
  );
  return results.filter((r) => r.status === "fulfilled").length;
}

/**
 * A container another process created that provably still runs (two processes may share a worker
 * id). One whose owner cannot be judged (another boot) keeps the old rule: same id, earlier run.
 */
function ownedByAnotherLiveProcess(c: Docker.ContainerInfo, self: Owner | undefined): boolean {
  const owner = parseOwner(c.Labels[LABEL.owner]);
  if (!owner || !self) return false;
  if (owner.pid === self.pid && owner.start === self.start && owner.pidns === self.pidns)
    return false;
  return liveness(owner, self) === "alive";
}

/**
 * Remove every container labelled sigil.worker=workerId, except those of exceptRunId and those
 * another live process created (two processes may share a worker id). Returns how many were
 * removed.
 */
export async function cleanupOrphans(
  workerId: string,
  opts: { docker?: Docker; exceptRunId?: string; self?: Owner | undefined } = {},
): Promise<number> {
  const docker = opts.docker ?? new Docker();
  const self = "self" in opts ? opts.self : selfOwner();
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL.worker}=${workerId}`] },
  });
  const stale = list.filter(
    (c) =>
      (!opts.exceptRunId || c.Labels[LABEL.run] !== opts.exceptRunId) &&
      !ownedByAnotherLiveProcess(c, self),
  );
  return removeContainers(docker, stale);
}

/**
 * Remove every sandbox container on this Docker host whose creating process is provably gone
 * (same boot and pid namespace, and no process with that pid and start time). Containers of a
 * live process, of another host or namespace, or without an owner label are left alone.
 */
export async function cleanupDeadOwners(
  opts: { docker?: Docker; self?: Owner | undefined } = {},
): Promise<number> {
  const docker = opts.docker ?? new Docker();
  const self = "self" in opts ? opts.self : selfOwner();
  if (!self) return 0;
  const list = await docker.listContainers({ all: true, filters: { label: [LABEL.owner] } });
  const dead = list.filter((c) => {
    const owner = parseOwner(c.Labels[LABEL.owner]);
    return owner !== undefined && liveness(owner, self) === "dead";
  });
  return removeContainers(docker, dead);
}

/** Convenience for one-off use (a benchmark, a CLI): a pool-less sandbox, one job, shut down. */
export async function runJob(
  spec: unknown,
  opts: Omit<SandboxOptionsInput, "pools"> & RunOptions,
): Promise<JobResult> {
  const { signal, ...options } = opts;
  const sb = new Sandbox(options);
  try {
    return await sb.runJob(spec, signal ? { signal } : {});
  } finally {
    await sb.shutdown({ graceMs: 0 });
  }
}

export type { Tier };
