// `sigil approvals …` and `sigil incidents …` (docs/cli.md) as an operator runs them: the bin
// spawned against a Node API this test starts (real Redis), with key files of each role. Each
// command's happy path and its main error (bad key, wrong role, not found, unreachable), with the
// exit codes scripts rely on (0 ok, 1 failed, 2 usage, 3 unreachable); `watch` follows the change
// feed and ends with exit 1 when its key is revoked while it watches.
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Approval, Sigil } from "../../sdk";
import { publicJwk } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import type { Incident } from "../../shared/incidents";
import { type CliRun, cliRunner } from "../support/cli";
import { openTestIncident } from "../support/incidents";
import { newKey, registeredKey, startTarget, type Target, type TestKey } from "../support/targets";
import { repoRoot } from "../support/vectors";

const MODEL = readFileSync(join(repoRoot, "examples/security-model.policy"), "utf8");
const UNKNOWN = "01900000-0000-7000-8000-000000000000";
const allocate = (n: number) => ({
  action: "allocate",
  resource: "resources",
  tags: ["high_memory_operations"],
  context: {
    user: { resource_quota: { remaining: 16 }, max_priority: 5 },
    resources: { total: 8 },
    operation: { priority: 3 },
    n,
  },
});

let t: Target;
let dir: string;
let admin: Sigil;
let requester: Sigil;
const files: Record<string, string> = {};
let n = 0;

const sigil = cliRunner(() => ({ cwd: dir, url: t.url }));
/** `sigil args --key <the key file of who>`. */
const as = (who: string, args: string[]) => sigil([...args, "--key", files[who]!]);
const json = <T>(r: CliRun): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};
/** A failed run: its exit code and its one-line error. */
const failure = (r: CliRun) => [r.code, r.stderr.trim().split("\n")[0]];

async function keyFile(name: string, k: TestKey): Promise<void> {
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      kid: k.kid,
      secretKey: toBase64Url(k.secretKey),
      publicJwk: publicJwk(k.publicKey, { kid: k.kid }),
    }),
    { mode: 0o600 },
  );
  files[name] = file;
}

async function pendingApproval(): Promise<string> {
  const d = await requester.evaluate(allocate(++n));
  expect(d.decision).toBe("require_approval");
  return d.approvalId!;
}

beforeAll(async () => {
  t = await startTarget("node");
  dir = await mkdtemp(join(tmpdir(), "sigil-opcli-"));
  admin = t.client(t.admin);
  await admin.policies.put("security-model", MODEL);
  const req = await registeredKey(admin, "agent", "op-requester");
  requester = t.client(req);
  await keyFile("admin", t.admin);
  await keyFile("requester", req);
  await keyFile("boss", await registeredKey(admin, "agent", "op-boss", { groups: ["supervisor"] }));
  await keyFile("auditor", await registeredKey(admin, "auditor", "op-auditor"));
  await keyFile("worker", await registeredKey(admin, "worker", "op-worker"));
  await keyFile("stranger", await newKey()); // never registered
}, 120_000);

afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("sigil approvals", () => {
  it("ls and show a pending approval; approve it once (a second answer is a conflict)", async () => {
    const id = await pendingApproval();
    const page = json<{ approvals: Approval[] }>(
      await as("admin", ["approvals", "ls", "--status", "pending", "--json"]),
    );
    expect(page.approvals.map((a) => a.id)).toContain(id);
    const table = await as("boss", ["approvals", "ls"]);
    expect([table.code, table.stdout]).toEqual([0, expect.stringContaining(id)]);
    expect(json<Approval>(await as("boss", ["approvals", "show", id, "--json"])).status).toBe(
      "pending",
    );
    const human = await as("admin", ["approvals", "show", id]);
    expect(human.stdout).toMatch(/status\s+pending/);

    const ok = await as("boss", ["approvals", "approve", id, "--reason", "fine"]);
    expect([ok.code, ok.stdout.trim()]).toEqual([0, `${id} approved`]);
    const again = await as("boss", ["approvals", "approve", id]);
    expect(failure(again)).toEqual([1, expect.stringMatching(/^sigil: \S*conflict/)]);
  }, 180_000);

  it("deny; the requester may not answer its own request (separation of duties)", async () => {
    const id = await pendingApproval();
    const own = await as("requester", ["approvals", "deny", id]);
    expect(failure(own)).toEqual([1, expect.stringMatching(/separation-of-duties/)]);
    const r = await as("boss", ["approvals", "deny", id, "--reason", "no", "--json"]);
    expect(json<Approval>(r).status).toBe("denied");
  }, 180_000);

  it("main errors: not found, wrong role, unknown key, unreachable, bad flag", async () => {
    expect(failure(await as("admin", ["approvals", "show", UNKNOWN]))).toEqual([
      1,
      expect.stringMatching(/not-found/),
    ]);
    expect(failure(await as("worker", ["approvals", "ls"]))).toEqual([
      1,
      expect.stringMatching(/forbidden/),
    ]);
    expect(failure(await as("stranger", ["approvals", "ls"]))).toEqual([
      1,
      expect.stringMatching(/key-unknown/),
    ]);
    const down = await sigil([
      "approvals",
      "ls",
      "--key",
      files.admin!,
      "--url",
      "http://127.0.0.1:9",
    ]);
    expect(failure(down)).toEqual([3, expect.stringMatching(/^sigil: unreachable/)]);
    expect((await as("admin", ["approvals", "ls", "--status", "maybe"])).code).toBe(2);
  }, 180_000);

  it("watch prints the next change as a JSON line and exits after --count", async () => {
    let done = false;
    const watching = as("boss", ["approvals", "watch", "--count", "1", "--json"]).finally(() => {
      done = true;
    });
    // Changes until the watch (its process starting, its stream opening) has seen one.
    const made: string[] = [];
    while (!done) {
      made.push(await pendingApproval());
      await new Promise((r) => setTimeout(r, 1000));
    }
    const r = await watching;
    expect(r.code, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout.trim()) as { event: string; data: Approval };
    expect(line.event).toBe("approval");
    expect(made).toContain(line.data.id);
    expect(line.data.status).toBe("pending");
  }, 180_000);

  // Revoked before or after its stream opened (a slow start): exit 1 and one line either way; the
  // stream ending mid-way is test/functions/hostile-streams.test.ts.
  it("watch with a revoked key exits 1 with one line", async () => {
    const k = await registeredKey(admin, "auditor", "op-watcher");
    await keyFile("watcher", k);
    const watching = as("watcher", ["approvals", "watch"]);
    await new Promise((r) => setTimeout(r, 2000));
    await admin.keys.revoke(k.kid);
    expect(failure(await watching)).toEqual([1, expect.stringMatching(/^sigil: \S*key-unknown/)]);
  }, 180_000);
});

describe("sigil incidents", () => {
  it("ls, show, ack, resolve; a second ack is a conflict", async () => {
    const store = t.incidents!;
    const id = await openTestIncident(store, { severity: "high", subject: "op-suspect" });
    const page = json<{ incidents: Incident[] }>(
      await as("auditor", ["incidents", "ls", "--state", "open", "--severity", "high", "--json"]),
    );
    expect(page.incidents.map((i) => i.incidentId)).toContain(id);
    const table = await as("auditor", ["incidents", "ls"]);
    expect([table.code, table.stdout]).toEqual([0, expect.stringContaining(id)]);
    const shown = await as("auditor", ["incidents", "show", id]);
    expect([shown.code, shown.stdout]).toEqual([0, expect.stringContaining("op-suspect")]);
    expect(shown.stdout).toContain("timeline:");

    const ack = await as("admin", ["incidents", "ack", id, "--reason", "looking"]);
    expect([ack.code, ack.stdout.trim()]).toEqual([0, `${id} acknowledged`]);
    expect(failure(await as("admin", ["incidents", "ack", id, "--reason", "again"]))).toEqual([
      1,
      expect.stringMatching(/conflict/),
    ]);
    const res = await as("admin", ["incidents", "resolve", id, "--reason", "fixed", "--json"]);
    expect(json<Incident>(res).state).toBe("resolved");
    const after = json<Incident>(await as("auditor", ["incidents", "show", id, "--json"]));
    expect(after.timeline.map((e) => e.state)).toEqual(["open", "acknowledged", "resolved"]);
  }, 180_000);

  it("false-positive; an auditor may read but not move an incident", async () => {
    const id = await openTestIncident(t.incidents!, { severity: "medium" });
    expect(
      failure(await as("auditor", ["incidents", "false-positive", id, "--reason", "mine"])),
    ).toEqual([1, expect.stringMatching(/forbidden/)]);
    const r = await as("admin", ["incidents", "false-positive", id, "--reason", "benign"]);
    expect([r.code, r.stdout.trim()]).toEqual([0, `${id} false_positive`]);
  }, 180_000);

  it("main errors: not found, no evidence, wrong role, unknown key, unreachable, usage", async () => {
    expect(failure(await as("admin", ["incidents", "show", UNKNOWN]))).toEqual([
      1,
      expect.stringMatching(/not-found/),
    ]);
    const id = await openTestIncident(t.incidents!, { severity: "low" });
    expect(failure(await as("admin", ["incidents", "evidence", id]))).toEqual([
      1,
      expect.stringMatching(/not-found.*no evidence bundle/),
    ]);
    expect(failure(await as("requester", ["incidents", "ls"]))).toEqual([
      1,
      expect.stringMatching(/forbidden/),
    ]);
    expect(failure(await as("stranger", ["incidents", "ls"]))).toEqual([
      1,
      expect.stringMatching(/key-unknown/),
    ]);
    const down = await sigil([
      "incidents",
      "ls",
      "--key",
      files.admin!,
      "--url",
      "http://127.0.0.1:9",
    ]);
    expect(failure(down)).toEqual([3, expect.stringMatching(/^sigil: unreachable/)]);
    expect((await as("admin", ["incidents", "ls", "--severity", "dire"])).code).toBe(2);
    expect((await as("admin", ["incidents", "ack", id])).code).toBe(2); // --reason is required
  }, 180_000);

  it("watch follows incident changes and resumes after an id; a malformed --after is refused", async () => {
    let done = false;
    const watching = as("auditor", ["incidents", "watch", "--count", "2", "--json"]).finally(() => {
      done = true;
    });
    const opened: string[] = [];
    while (!done) {
      opened.push(await openTestIncident(t.incidents!, { severity: "high" }));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const r = await watching;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; id: string; data: Incident });
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l.event).toBe("incident");
      expect(opened).toContain(l.data.incidentId);
    }
    // Resuming after the first event prints the second again.
    const resumed = await as("auditor", [
      "incidents",
      "watch",
      "--after",
      lines[0]!.id,
      "--count",
      "1",
      "--json",
    ]);
    expect((JSON.parse(resumed.stdout.trim()) as { id: string }).id).toBe(lines[1]!.id);
    expect(failure(await as("auditor", ["incidents", "watch", "--after", "nope"]))).toEqual([
      1,
      expect.stringMatching(/validation.*Last-Event-ID/),
    ]);
  }, 180_000);
});
