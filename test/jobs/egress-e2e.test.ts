// Egress end to end (docs/sandbox.md, "Egress"): the API with `[network] egress` on admits a job's
// rules, a real worker process (startWorkerNode, the product's driver) runs it on its own network
// through its proxy to test servers in a network namespace, and the signed result, the stored job
// and the audit trail carry the connection log's summary and refusals. A worker killed mid-job
// leaves its network and firewall rules behind; the next worker's start removes them.
import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadOrCreateWorkerKey } from "../../worker/jobs/keys";
import {
  JOB_PRELUDE,
  type NetnsServers,
  NETNS_PORTS as P,
  startNetnsServers,
  startTestDns,
} from "../sandbox/egress-netns";
import { type Harness, startHarness } from "./support/harness";
import { harnessWorkerEnv, spawnWorkerProc, until, workerReady } from "./support/worker-spawn";

let h: Harness;
let dir: string;
let srv: NetnsServers;
let dns: { port: number; close(): void };
let egressEnv: Record<string, string>;
const procs: ChildProcess[] = [];
const WORKER_ID = `egress-e2e-${process.pid}`;
const docker = new Docker();

function spawnWorker(): ChildProcess {
  return spawnWorkerProc(
    {
      ...egressEnv,
      ...harnessWorkerEnv(h, dir, WORKER_ID),
      SIGIL_SANDBOX_WARM_POOL_SIZE: "0",
    },
    procs,
  );
}
const ready = workerReady;

const networks = () =>
  docker.listNetworks({ filters: { label: [`sigil.egress=1`, `sigil.worker=${WORKER_ID}`] } });
const firewallNames = (bridge: string) =>
  ["filter", "nat"].some((t) =>
    execFileSync("iptables", ["-w", "5", "-t", t, "-S"]).toString().includes(bridge),
  );

beforeAll(async () => {
  srv = await startNetnsServers();
  dns = await startTestDns({ "api.test": srv.serverIp });
  egressEnv = {
    SIGIL_NETWORK_EGRESS: "true",
    SIGIL_NETWORK_RESOLVERS: JSON.stringify([`127.0.0.1:${dns.port}`]),
    SIGIL_NETWORK_ALLOW_CIDRS: JSON.stringify([`${srv.serverIp}/32:${P.https}`]),
  };
  h = await startHarness("egress-e2e", egressEnv);
  dir = await mkdtemp(join(tmpdir(), "sigil-egress-e2e-"));
  const key = await loadOrCreateWorkerKey(join(dir, "worker"));
  await h.addKey("worker", WORKER_ID, key.signer);
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await h?.close();
  dns?.close();
  srv?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const submit = (agent: ReturnType<Harness["client"]>, code: string) =>
  agent.jobs.submit({
    image: "sigil/python:1",
    code: JOB_PRELUDE + code,
    language: "python",
    files: { "ca.pem": srv.caPem },
    timeoutMs: 60_000,
    network: { allow: [{ domain: "api.test", ports: [P.https], protocol: "tcp" }] },
  });

it("a job with rules reaches its allowed name only; the signed result and the trail carry the log", async () => {
  const agent = h.client(await h.addKey("agent", "agent-egress", undefined, { trust: 1 }));
  const worker = spawnWorker();
  await ready(worker);
  const before = srv.hits.https;
  const { jobId } = await submit(
    agent,
    `out("ok", https("api.test", ${P.https}))\nout("nx", https("evil.test", ${P.https}))`,
  );
  const done = await agent.jobs.wait(jobId, 90_000);
  expect(done.status).toBe("succeeded");
  expect(done.result?.stdout).toBe("ok=ok:api.test\nnx=status403\n");
  expect(srv.hits.https - before).toBe(1);
  const signed = (done.result as { signed: { egress?: Record<string, unknown> } }).signed;
  expect(signed.egress).toMatchObject({ connections: 1, refused: 1, bytesUp: expect.any(Number) });
  const ofJob = h.audits.filter((a) => a.details.jobId === jobId);
  expect(ofJob.filter((a) => a.eventType === "egress.denied").map((a) => a.details)).toEqual([
    expect.objectContaining({
      host: "evil.test",
      port: P.https,
      reason: "name and port not on the job's allow-list",
    }),
  ]);
  expect(ofJob.find((a) => a.eventType === "egress.summary")?.details).toMatchObject({
    ...signed.egress,
    logReported: true,
    deniedAudited: 1,
  });
  expect(await networks()).toEqual([]);
  worker.kill("SIGTERM");
  expect(await new Promise((r) => worker.once("exit", r))).toBe(0);
});

it("a worker killed mid-job leaves its network and rules; the next worker's start removes them", async () => {
  const agent = h.client(await h.addKey("agent", "agent-egress-2", undefined, { trust: 1 }));
  const first = spawnWorker();
  await ready(first);
  const { jobId } = await submit(agent, `import time\ntime.sleep(4)\nout("done", "1")`);
  const [net] = await until(async () => {
    const l = await networks();
    return l.length > 0 ? l : undefined;
  }, 30_000);
  first.kill("SIGKILL");
  await new Promise((r) => first.once("exit", r));
  expect(firewallNames(net!.Name)).toBe(true);

  const second = spawnWorker();
  await ready(second);
  // Cleaned at start; the job itself is retried on the second worker and succeeds.
  const done = await agent.jobs.wait(jobId, 90_000);
  expect(done.status).toBe("succeeded");
  await until(async () => ((await networks()).length === 0 ? true : undefined), 20_000);
  expect(firewallNames(net!.Name)).toBe(false);
  second.kill("SIGTERM");
  expect(await new Promise((r) => second.once("exit", r))).toBe(0);
});
