// Driver options and the Docker create options that carry docs/sandbox.md's hardening table.
import type Docker from "dockerode";
import { z } from "zod";
import { MiB, type SandboxEvent, type SandboxLimits, Tier } from "./types";

export const DEFAULT_IMAGES = ["sigil/busybox:1", "sigil/python:1"];

const CapName = z
  .string()
  .regex(/^(CAP_)?[A-Z_]{2,32}$/, "capability names look like SETUID or CAP_SETUID")
  .refine((c) => c !== "ALL" && c !== "CAP_ALL", "capAdd must name capabilities, not ALL");

export const SandboxOptionsSchema = z.strictObject({
  /** Labels every container (sigil.worker) so cleanupOrphans finds this worker's leftovers. */
  workerId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
  /** Allow-list of images a job may name. */
  images: z.array(z.string().min(1)).min(1).default(DEFAULT_IMAGES),
  /** Docker runtime name for Tier 2 (e.g. "runsc-ptrace" to pin the gVisor platform). */
  gvisorRuntime: z
    .string()
    .regex(/^runsc[A-Za-z0-9_.-]*$/)
    .default("runsc"),
  /**
   * Capabilities added back after dropping ALL (the security model's SETUID/SETGID, if configured).
   */
  capAdd: z.array(CapName).default([]),
  workDirMb: z.number().int().min(1).max(4096).default(64),
  tmpMb: z.number().int().min(1).max(4096).default(64),
  /** Cap on files + code + stdin handed to a container. */
  maxPayloadBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * MiB)
    .default(8 * MiB),
  /** Warm pools: per (image, tier), containers created and started ahead of jobs. */
  pools: z
    .array(
      z.strictObject({
        image: z.string().min(1),
        tier: Tier,
        /** The floor: containers kept ready when no job arrives. */
        size: z.number().int().min(0).max(64),
        /** Hard cap the pool may grow to under load (default: size, no growth). */
        max: z.number().int().min(0).max(64).optional(),
      }),
    )
    .default([]),
  /** Warm containers being created at once, per pool (pool.ts). */
  poolMaxCreating: z.number().int().min(1).max(16).default(2),
  /** A pool that sees no job for this long shrinks back to its floor. */
  poolIdleMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /** How long a killed container may take to report its exit before the job ends in "error". */
  killGraceMs: z.number().int().min(100).max(120_000).default(10_000),
});
export type SandboxOptionsInput = z.input<typeof SandboxOptionsSchema> & {
  docker?: Docker;
  onEvent?: (e: SandboxEvent) => void;
};
export type SandboxConfig = z.output<typeof SandboxOptionsSchema>;

export const LABEL = {
  job: "sigil.job",
  tier: "sigil.tier",
  worker: "sigil.worker",
  run: "sigil.run",
  pool: "sigil.pool",
  /** The creating process, so any worker on the host can tell when it is gone (owner.ts). */
  owner: "sigil.owner",
} as const;

/** Labels a container gets besides its tier and worker. */
export interface ContainerLabels {
  job: string;
  pool: "warm" | "cold";
  run: string;
  owner?: string;
}

/** Create-time settings; a warm container fits a job only if these match exactly. */
export interface ContainerShape {
  image: string;
  tier: Tier;
  memoryMb: number;
  cpus: number;
  pids: number;
}

export const shapeKey = (s: ContainerShape): string =>
  `${s.image}|${s.tier}|${s.memoryMb}|${s.cpus}|${s.pids}`;

export const shapeOf = (image: string, tier: Tier, limits: SandboxLimits): ContainerShape => ({
  image,
  tier,
  memoryMb: limits.memoryMb,
  cpus: limits.cpus,
  pids: limits.pids,
});

// Under runsc's ptrace platform every guest task costs several host tasks (measured here: 46
// host tasks idle, +7.4 per sleeping guest process, and a peak of ~4,750 host tasks during a
// fork bomb capped at 128 guest tasks), and a sentry that hits the host pids cgroup limit
// panics and takes the whole sandbox down. So Tier 2 enforces the job's limit inside the
// sandbox with RLIMIT_NPROC (gVisor is its own kernel, so the count is per sandbox) and keeps
// the host cgroup limit only as a backstop sized from that measurement; hitting it kills the
// sandbox (contained, fail closed). Under runc RLIMIT_NPROC would count uid 1000 across every
// container on the host, so Tier 1 uses the pids cgroup alone.
export const runscHostPids = (pids: number): number => pids * 48 + 256;

/**
 * A job with egress rules: its own internal network, proxy settings and resolver
 * (worker/egress/network.ts), and for Tier 2 the runsc registration with its network stack on.
 */
export interface ContainerNetwork {
  network: string;
  env: string[];
  binds: string[];
  gvisorRuntime: string;
}

export function createOptions(
  cfg: SandboxConfig,
  shape: ContainerShape,
  labels: ContainerLabels,
  name?: string,
  net?: ContainerNetwork,
): Docker.ContainerCreateOptions {
  const gvisor = shape.tier === "gvisor";
  const runtime = gvisor ? (net ? net.gvisorRuntime : cfg.gvisorRuntime) : "runc";
  const memory = shape.memoryMb * MiB;
  const ulimits: Docker.Ulimit[] = [{ Name: "core", Soft: 0, Hard: 0 }];
  if (gvisor) ulimits.push({ Name: "nproc", Soft: shape.pids, Hard: shape.pids });
  return {
    ...(name ? { name } : {}),
    Image: shape.image,
    User: "1000:1000",
    WorkingDir: "/work",
    Env: [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=/work",
      "LANG=C.UTF-8",
      ...(net?.env ?? []),
    ],
    // The job arrives on stdin (warm-pool protocol); StdinOnce closes it after the archive.
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: !net,
    Labels: {
      [LABEL.job]: labels.job,
      [LABEL.tier]: shape.tier,
      [LABEL.worker]: cfg.workerId,
      [LABEL.run]: labels.run,
      [LABEL.pool]: labels.pool,
      ...(labels.owner ? { [LABEL.owner]: labels.owner } : {}),
    },
    HostConfig: {
      Runtime: runtime,
      NetworkMode: net ? net.network : "none",
      ...(net ? { Binds: net.binds } : {}),
      Memory: memory,
      MemorySwap: memory, // equal to Memory: no swap
      NanoCpus: Math.round(shape.cpus * 1e9),
      PidsLimit: gvisor ? runscHostPids(shape.pids) : shape.pids,
      Ulimits: ulimits,
      ReadonlyRootfs: true,
      // uid/gid matter: over an existing image directory runc keeps the directory's mode and
      // ignores mode=, so ownership is what makes /work writable for user 1000.
      Tmpfs: {
        "/work": `rw,nosuid,nodev,noexec,size=${cfg.workDirMb}m,mode=0700,uid=1000,gid=1000`,
        "/tmp": `rw,nosuid,nodev,noexec,size=${cfg.tmpMb}m,mode=1777`,
      },
      // Docker's default seccomp profile applies because we never pass seccomp=...
      SecurityOpt: ["no-new-privileges"],
      CapDrop: ["ALL"],
      CapAdd: cfg.capAdd,
      Privileged: false,
      IpcMode: "private",
      // Attach reads the container's stdio directly; "none" keeps output off dockerd's disk.
      LogConfig: { Type: "none", Config: {} },
      RestartPolicy: { Name: "no" },
      AutoRemove: false, // we remove it after reading its exit state
    },
  };
}
