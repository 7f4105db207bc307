// What a sandbox can run at all, in one place. The configuration's maxima (shared/config) must lie
// inside these bounds, the API validates a job against the configured maxima, and the worker's
// sandbox validates with the same bounds and the same archive rules: a job the API accepts is a
// job the worker runs (no 202 followed by `error`). No imports, so the config schema can use it.

const MiB = 1024 * 1024;

/**
 * Per-job resource limits; maxima are what one container may be given. The minima are what both
 * runtimes can run: under runsc the sandbox kernel starts inside the job's CPU quota, and at 0.01
 * CPU (Docker's own minimum) a container took over 70 s to start and `print('ok')` in python did
 * not finish within 60 s, against about 2.5 s at 0.1 CPU (measured on the 2-core dev machine).
 * 32 MiB runs busybox and python on both runtimes.
 */
export const LIMIT_BOUNDS = {
  memoryMb: { min: 32, max: 65_536 },
  cpus: { min: 0.1, max: 64 },
  pids: { min: 8, max: 4096 },
  outputBytes: { min: 1024, max: 64 * MiB },
  timeoutMs: { min: 100, max: 3_600_000 },
} as const;

/** docs/sandbox.md's per-container defaults (the configuration's defaults too). */
export const DEFAULT_LIMITS = Object.freeze({
  memoryMb: 512,
  cpus: 0.5,
  pids: 128,
  outputBytes: MiB,
});
export const DEFAULT_TIMEOUT_MS = 30_000;

const enc = new TextEncoder();

/**
 * Splits a path into a ustar header's (prefix, name): name ≤ 100 bytes, prefix ≤ 155 bytes, cut
 * at a '/'. Null when the path cannot be stored in a ustar header. The worker's tar writer uses
 * it, and the job schema refuses file paths (and their parent directories) that do not fit.
 */
export function splitUstarPath(path: string): [Uint8Array, Uint8Array] | null {
  const full = enc.encode(path);
  if (full.length <= 100) return [new Uint8Array(0), full];
  for (let i = full.length - 1; i > 0; i--) {
    if (full[i] !== 0x2f) continue;
    const prefix = full.subarray(0, i);
    const name = full.subarray(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return [prefix, name];
  }
  return null;
}

/** A file path and each of its parent directories (as "dir/") fit a ustar header. */
export function fitsJobArchive(path: string): boolean {
  if (splitUstarPath(path) === null) return false;
  const segs = path.split("/");
  for (let i = 1; i < segs.length; i++)
    if (splitUstarPath(`${segs.slice(0, i).join("/")}/`) === null) return false;
  return true;
}
