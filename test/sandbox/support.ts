// Shared setup for the sandbox tests: real dockerd, real runc/runsc, images from infra/images.sh.
import Docker from "dockerode";
import { cleanupOrphans, Sandbox, type SandboxOptionsInput } from "../../worker/sandbox";

export const docker = new Docker();
export const BUSYBOX = "sigil/busybox:1";
export const PYTHON = "sigil/python:1";
export const TIERS = ["docker", "gvisor"] as const;

/** A worker id unique to this test file and process, so parallel files never touch each other. */
export const workerIdFor = (file: string): string =>
  `test-${file}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

export function newSandbox(file: string, extra: Partial<SandboxOptionsInput> = {}): Sandbox {
  return new Sandbox({ workerId: workerIdFor(file), docker, ...extra });
}

/** Shut down and make sure nothing labelled with this worker is left behind. */
export async function closeSandbox(sb: Sandbox): Promise<void> {
  await sb.shutdown({ graceMs: 0 });
  await cleanupOrphans(sb.config.workerId, { docker });
}

export async function containersOf(workerId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`sigil.worker=${workerId}`] } });
}

let seq = 0;
export const jobId = (name: string): string => `${name}-${process.pid}-${++seq}`;
