// Finds the sandbox driver in worker/sandbox (written beside this module) by its agreed shape:
// either module-level runJob/cleanupOrphans/shutdown, or a factory returning such an object.
// Loaded at run time so this node starts, with a clear message, even while that module moves.
import type { SandboxDriver } from "./driver";

type Mod = Record<string, unknown>;
const isFn = (v: unknown): v is (...a: unknown[]) => unknown => typeof v === "function";

function asDriver(v: unknown): SandboxDriver | undefined {
  const d = v as Partial<SandboxDriver> | undefined;
  return d && isFn(d.runJob) && isFn(d.cleanupOrphans) && isFn(d.shutdown)
    ? (d as SandboxDriver)
    : undefined;
}

export async function loadSandboxDriver(
  workerId: string,
  options: Record<string, unknown>,
): Promise<{ driver: SandboxDriver; preflight?: () => Promise<string[]> }> {
  let mod: Mod;
  try {
    mod = (await import(new URL("../sandbox/index.ts", import.meta.url).href)) as Mod;
  } catch (e) {
    throw new Error(
      `the sandbox driver (worker/sandbox) could not be loaded: ${(e as Error).message}`,
    );
  }
  let driver = asDriver(mod);
  for (const name of ["createSandboxDriver", "createDriver", "createSandbox"]) {
    const f = mod[name];
    if (!driver && isFn(f)) driver = asDriver(await f({ workerId, ...options }));
  }
  if (!driver) throw new Error("worker/sandbox does not export runJob/cleanupOrphans/shutdown");
  let preflight: (() => Promise<string[]>) | undefined;
  try {
    const p = (await import(new URL("../sandbox/preflight.ts", import.meta.url).href)) as Mod;
    const f = p.preflight ?? p.runPreflight;
    if (isFn(f))
      preflight = async () => {
        const out = (await f(options)) as unknown;
        if (Array.isArray(out)) return out.map(String);
        const problems = (out as { problems?: unknown })?.problems;
        return Array.isArray(problems) ? problems.map(String) : [];
      };
  } catch {
    // no driver preflight: the node's own checks still run
  }
  return preflight ? { driver, preflight } : { driver };
}
