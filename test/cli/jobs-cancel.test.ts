// Job control as a user drives it (docs/http-api.md "Cancel", docs/cli.md): `sigil jobs ls` and
// `sigil jobs cancel` against the deployment `npm start` brings up (real Redis, a real worker,
// real Docker). A queued job ends `killed` at once; a running `sleep 60` is killed on its worker,
// which signs a `killed` result; cancel and finish racing leave exactly one final state.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobRecord, Sigil, type SigilError } from "../../sdk";
import { devAdminClient, loadKeyFile } from "../../sdk/node";
import { cliRunner } from "../support/cli";
import { type Stack, startStack } from "../support/stack";
import { until } from "../support/until";

let stack: Stack;
let dir: string;
let admin: Sigil;

const sigil = cliRunner(() => ({ cwd: dir, url: stack.base, dataDir: stack.dataDir }));

/** A key file written by `sigil keys create` and a client signed with it. */
async function keyOf(role: string, subject: string, trust?: string) {
  const file = join(dir, `${subject}.json`);
  const r = await sigil([
    "keys",
    "create",
    "--role",
    role,
    "--subject",
    subject,
    ...(trust ? ["--trust", trust] : []),
    "--out",
    file,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const k = await loadKeyFile(file);
  return { file, client: new Sigil({ baseUrl: stack.base, keyId: k.kid, secretKey: k.secretKey }) };
}

async function status(id: string): Promise<string> {
  return (await admin.jobs.get(id)).status;
}

/** The `finished` events of a job's feed (a job has exactly one). */
async function finishedEvents(c: Sigil, id: string): Promise<number> {
  let n = 0;
  for await (const e of c.jobs.events(id)) if (e.event === "finished") n++;
  return n;
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as SigilError,
  );

let a: Awaited<ReturnType<typeof keyOf>>;
let b: Awaited<ReturnType<typeof keyOf>>;
let auditor: Awaited<ReturnType<typeof keyOf>>;

beforeAll(async () => {
  // One running job per submitter: a second job of the same agent stays queued.
  stack = await startStack("jobctl", { SIGIL_LIMITS_RUNNING_JOBS: "1" });
  dir = await mkdtemp(join(tmpdir(), "sigil-jobctl-"));
  admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
  a = await keyOf("agent", "jc-a", "1");
  b = await keyOf("agent", "jc-b", "1");
  auditor = await keyOf("auditor", "jc-r");
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("sigil jobs cancel", () => {
  it("kills a running job on its worker (signed killed result) and ends a queued one at once", async () => {
    const running = await a.client.jobs.submit({
      image: "sigil/busybox:1",
      command: ["sleep", "60"],
      timeoutMs: 120_000,
    });
    await until("the sleep to run", async () => (await status(running.jobId)) === "running");
    const queued = await a.client.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
    expect(await status(queued.jobId)).toBe("queued");

    const q = await sigil([
      "jobs",
      "cancel",
      queued.jobId,
      "--reason",
      "not needed",
      "--key",
      a.file,
      "--json",
    ]);
    expect(q.code, q.stderr).toBe(0);
    const qOut = JSON.parse(q.stdout) as { outcome: string; job: JobRecord };
    expect(qOut.outcome).toBe("cancelled");
    expect(qOut.job.status).toBe("killed");
    expect(qOut.job.reason).toBe("cancelled by jc-a: not needed");

    const started = Date.now();
    const r = await sigil(["jobs", "cancel", running.jobId, "--key", a.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("being killed");
    const done = await a.client.jobs.wait(running.jobId, 30_000);
    expect(done.status).toBe("killed");
    // Killed by the cancel, not by its 120 s timeout.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(done.result?.signed.reason).toBe("cancelled");
    // `sigil jobs get` checks the worker's signature over the killed result.
    const got = await sigil(["jobs", "get", running.jobId, "--key", a.file]);
    expect(got.stderr).toContain("✓");
    expect(await finishedEvents(a.client, running.jobId)).toBe(1);

    // Cancelled while queued, it never runs: still killed after the worker had its turn.
    await new Promise((res) => setTimeout(res, 2000));
    const after = await admin.jobs.get(queued.jobId);
    expect([after.status, after.result, after.attempts]).toEqual(["killed", undefined, 0]);
    expect(await finishedEvents(a.client, queued.jobId)).toBe(1);

    // Both cancels are in the audit trail.
    const events = (await admin.audit.export())
      .split("\n")
      .filter((l) => l.includes('"job.cancelled"'))
      .map((l) => JSON.parse(l) as { details: { jobId: string } });
    const ids = events.map((e) => e.details.jobId);
    expect(ids).toEqual(expect.arrayContaining([queued.jobId, running.jobId]));
  }, 120_000);

  it("a finished job is left alone; cancel and finish racing leave exactly one final state", async () => {
    const quick = await a.client.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
    const done = await a.client.jobs.wait(quick.jobId, 60_000);
    expect(done.status).toBe("succeeded");
    const late = await a.client.jobs.cancel(quick.jobId);
    expect([late.outcome, late.job.status]).toEqual(["finished", "succeeded"]);

    for (let i = 0; i < 4; i++) {
      const j = await a.client.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
      await new Promise((res) => setTimeout(res, i * 150));
      const c = await a.client.jobs.cancel(j.jobId, "race");
      const end = await a.client.jobs.wait(j.jobId, 60_000);
      if (c.outcome === "cancelled")
        expect([end.status, end.result]).toEqual(["killed", undefined]);
      else if (c.outcome === "finished") expect(end.status).toBe("succeeded");
      else expect(["killed", "succeeded"]).toContain(end.status);
      if (end.status !== "killed" || c.outcome !== "cancelled")
        expect(end.result?.signed.status).toBe(end.status);
      expect(await finishedEvents(a.client, j.jobId)).toBe(1);
    }
  }, 180_000);

  it("only the submitter or an admin cancels; hostile bodies are refused", async () => {
    const j = await a.client.jobs.submit({
      image: "sigil/busybox:1",
      command: ["sleep", "30"],
      timeoutMs: 60_000,
    });
    // Another agent does not see it; an auditor may read but not cancel.
    expect((await errorOf(b.client.jobs.cancel(j.jobId)))?.status).toBe(404);
    expect((await errorOf(auditor.client.jobs.cancel(j.jobId)))?.status).toBe(403);
    const notFound = await sigil(["jobs", "cancel", j.jobId, "--key", b.file]);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr.trim().split("\n")).toHaveLength(1);
    // A lone surrogate and an oversized reason.
    expect((await errorOf(a.client.jobs.cancel(j.jobId, "\ud800")))?.status).toBe(400);
    expect(
      (await errorOf(a.client.jobs.cancel(j.jobId, "x".repeat(2 * 1024 * 1024))))?.status,
    ).toBe(413);
    expect((await errorOf(a.client.jobs.cancel(j.jobId, "x".repeat(2000))))?.status).toBe(400);
    expect(["queued", "running"]).toContain(await status(j.jobId));
    const byAdmin = await admin.jobs.cancel(j.jobId, "admin");
    expect(["cancelled", "killing"]).toContain(byAdmin.outcome);
    expect((await admin.jobs.wait(j.jobId, 30_000)).status).toBe("killed");
  }, 120_000);
});

describe("sigil jobs ls", () => {
  it("an agent sees its own jobs, an admin and an auditor all; paged and filtered", async () => {
    const mine = await b.client.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
    await b.client.jobs.wait(mine.jobId, 60_000);

    const ls = await sigil(["jobs", "ls", "--key", b.file, "--json"]);
    expect(ls.code, ls.stderr).toBe(0);
    const own = (JSON.parse(ls.stdout) as { jobs: JobRecord[] }).jobs;
    expect(own.map((j) => j.jobId)).toEqual([mine.jobId]);

    const all = await sigil(["jobs", "ls", "--json", "--limit", "1000"]);
    const everyone = (JSON.parse(all.stdout) as { jobs: JobRecord[] }).jobs;
    expect(everyone.length).toBeGreaterThan(5);
    expect(everyone[0]?.jobId).toBe(mine.jobId);
    const killed = await sigil([
      "jobs",
      "ls",
      "--status",
      "killed",
      "--json",
      "--key",
      auditor.file,
    ]);
    const k = (JSON.parse(killed.stdout) as { jobs: JobRecord[] }).jobs;
    expect(k.length).toBeGreaterThanOrEqual(3);
    expect(k.every((j) => j.status === "killed")).toBe(true);

    // Pages of one, newest first, cover the same jobs once each.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await admin.jobs.list({ limit: 1, ...(cursor ? { cursor } : {}) });
      seen.push(...page.jobs.map((j) => String(j.jobId)));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(everyone.map((j) => j.jobId));

    const human = await sigil(["jobs", "ls", "--key", b.file]);
    expect(human.stdout).toContain(mine.jobId);
    expect((await errorOf(admin.jobs.list({ cursor: "not a cursor" })))?.status).toBe(400);
    expect((await errorOf(admin.jobs.list({ limit: 101 })))?.status).toBe(400);
  }, 120_000);
});
