// An agent at work on a deployment from startStack (test/support/stack.ts), for the tests of what a
// quarantine or an incident does to its jobs (docs/incidents.md): one job running, one queued. The
// stack must run with SIGIL_LIMITS_RUNNING_JOBS=1, so the second job stays queued behind the first.
import { expect } from "vitest";
import { type Sigil, Sigil as SigilClient, SigilError } from "../../sdk";
import type { Stack } from "./stack";
import { registeredKey, type TestKey } from "./targets";
import { until } from "./until";

/** A client signing as `key`, without retries: a refusal is seen as it is. */
export const clientOf = (stack: Stack, key: TestKey): Sigil =>
  new SigilClient({ baseUrl: stack.base, keyId: key.kid, signer: key.signer, retries: 0 });

/** The problem code `p` is refused with, or null when it succeeds. */
export async function refusal(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (e instanceof SigilError) return e.code;
    throw e;
  }
}

export interface BusyAgent {
  key: TestKey;
  agent: Sigil;
  /** A `sleep 60` (timeout 120 s), running. */
  running: string;
  /** A `true`, queued behind it. */
  queued: string;
}

/** Registers an agent key (trust 1) for `subject` and gives it one running and one queued job. */
export async function busyAgent(stack: Stack, admin: Sigil, subject: string): Promise<BusyAgent> {
  const key = await registeredKey(admin, "agent", subject, { trust: 1 });
  const agent = clientOf(stack, key);
  const running = await agent.jobs.submit({
    image: "sigil/busybox:1",
    command: ["sleep", "60"],
    timeoutMs: 120_000,
  });
  await until(
    "the sleep to run",
    async () => (await admin.jobs.get(running.jobId)).status === "running",
  );
  const queued = await agent.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
  expect((await admin.jobs.get(queued.jobId)).status).toBe("queued");
  return { key, agent, running: running.jobId, queued: queued.jobId };
}
