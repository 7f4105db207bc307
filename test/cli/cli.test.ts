// The `sigil` command line as a user runs it (docs/cli.md): the bin spawned as a process against
// the deployment `npm start` brings up, with the local admin key it wrote. Each command's happy
// path and its main error, with the exit codes scripts rely on (0 ok, 1 denied/failed/invalid,
// 2 usage, 3 unreachable); jobs run on both tiers and exit with the job's code.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devAdminClient } from "../../sdk/node";
import { type CliRun, cliRunner } from "../support/cli";
import { connectRedis } from "../support/redis";
import { type Stack, startStack } from "../support/stack";
import { repoRoot } from "../support/vectors";

let stack: Stack;
let dir: string;

const sigil = cliRunner(() => ({ cwd: dir, url: stack.base, dataDir: stack.dataDir }));

const json = (r: CliRun) => JSON.parse(r.stdout) as Record<string, unknown>;

beforeAll(async () => {
  stack = await startStack("cli");
  dir = await mkdtemp(join(tmpdir(), "sigil-cli-"));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("usage and errors", () => {
  it("--help exits 0; no command and an unknown one exit 2", async () => {
    const help = await sigil(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout + help.stderr).toContain("policy");
    expect((await sigil([])).code).toBe(2);
    const unknown = await sigil(["frobnicate"]);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining("frobnicate")]);
    const missing = await sigil(["keys", "create", "--subject", "x"]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringContaining("role")]);
  });

  it("an unreachable API exits 3 with one line", async () => {
    const r = await sigil(["keys", "get", "abc", "--url", "http://127.0.0.1:9"]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")[0]).toMatch(/^sigil: unreachable/);
  });

  it("a key file that is missing or malformed exits 2", async () => {
    expect((await sigil(["keys", "get", "abc", "--key", join(dir, "nope.json")])).code).toBe(2);
    await writeFile(join(dir, "bad.json"), "{not json");
    const r = await sigil(["keys", "get", "abc", "--key", join(dir, "bad.json")]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining("not JSON")]);
  });

  it("a profile names the target and the key; a named profile that does not exist exits 2", async () => {
    await writeFile(
      join(dir, "cli.toml"),
      `[profiles.local]\nurl = "${stack.base}"\nkey = "${join(stack.dataDir, "admin-key.json")}"\n`,
    );
    const r = await sigil(["policy", "ls", "--json", "--profile", "local"], { SIGIL_URL: "" });
    expect(r.code).toBe(0);
    expect((await sigil(["policy", "ls", "--profile", "other"])).code).toBe(2);
    await rm(join(dir, "cli.toml"));
  });
});

describe("keys", () => {
  it("create generates a key file (0600, never overwritten), get shows the record", async () => {
    const out = join(dir, "agent-k.json");
    const r = await sigil([
      "keys",
      "create",
      "--role",
      "agent",
      "--subject",
      "cli-k",
      "--out",
      out,
      "--json",
    ]);
    expect(r.code).toBe(0);
    const { kid } = json(r) as { kid: string };
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(out, "utf8")).kid).toBe(kid);
    const again = await sigil([
      "keys",
      "create",
      "--role",
      "agent",
      "--subject",
      "cli-k",
      "--out",
      out,
    ]);
    expect(again.code).toBe(1);
    const got = await sigil(["keys", "get", kid, "--json"]);
    expect(json(got)).toMatchObject({ kid, role: "agent", subject: "cli-k" });
    const listed = json(await sigil(["keys", "list", "--subject", "cli-k", "--json"])) as {
      keys: { kid: string }[];
    };
    expect(listed.keys.map((k) => k.kid)).toEqual([kid]);
  });

  it("a key of the wrong role is refused: exit 1 with the problem type", async () => {
    const out = join(dir, "agent-w.json");
    expect(
      (await sigil(["keys", "create", "--role", "agent", "--subject", "w", "--out", out])).code,
    ).toBe(0);
    const r = await sigil([
      "keys",
      "create",
      "--role",
      "admin",
      "--subject",
      "x",
      "--out",
      join(dir, "x.json"),
      "--key",
      out,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sigil: .*forbidden/m);
  });

  it("rotate and revoke; an unknown kid is not found (exit 1)", async () => {
    const a = join(dir, "rot-a.json");
    const { kid } = json(
      await sigil(["keys", "create", "--role", "auditor", "--subject", "r", "--out", a, "--json"]),
    ) as { kid: string };
    const rot = await sigil(["keys", "rotate", kid, "--out", join(dir, "rot-b.json"), "--json"]);
    expect(rot.code).toBe(0);
    const next = (json(rot) as { kid: string }).kid;
    expect(next).not.toBe(kid);
    expect((await sigil(["keys", "revoke", next])).code).toBe(0);
    const gone = await sigil(["keys", "get", "A".repeat(43)]);
    expect([gone.code, gone.stderr]).toEqual([1, expect.stringContaining("not-found")]);
  });
});

describe("policy, offline", () => {
  it("check: the security model compiles; a broken file reports file:line:col and exits 1", async () => {
    const ok = await sigil([
      "policy",
      "check",
      join(repoRoot, "examples", "security-model.policy"),
    ]);
    expect(ok.code).toBe(0);
    await writeFile(join(dir, "broken.policy"), "policy p {\n  allow: read(x) if (\n}\n");
    const bad = await sigil(["policy", "check", "broken.policy"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^broken\.policy:\d+:\d+: /m);
  });

  const cases = `# request → expected decision, for the security model's three policies
cases:
  - name: secret clearance with need to know and MFA may read sensitive data
    request:
      action: read
      resource: sensitive_data
      context:
        user: { clearance: secret, need_to_know: [confidential], background_check: { current: true } }
        data: { classification: confidential }
        session: { mfa_verified: true, secure_connection: true }
    expect: { decision: allow_with_conditions }
  - name: exporting PII is denied
    request: { action: export, resource: data, context: { data: { contains_pii: true } } }
    expect: { decision: deny }
  - name: a high-memory allocation needs a supervisor
    request:
      action: allocate
      resource: resources
      tags: [high_memory_operations]
      context:
        user: { resource_quota: { remaining: 10 }, max_priority: 5 }
        resources: { total: 4 }
        operation: { priority: 1 }
    expect: { decision: require_approval, approver: supervisor }
`;

  it("test: the security model's cases pass; a wrong expectation exits 1 with expected vs got", async () => {
    await writeFile(join(dir, "cases.yaml"), cases);
    const model = join(repoRoot, "examples", "security-model.policy");
    const ok = await sigil(["policy", "test", model, "--cases", "cases.yaml"]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining("3/3 passed")]);
    await writeFile(join(dir, "wrong.yaml"), cases.replace("decision: deny", "decision: allow"));
    const bad = await sigil(["policy", "test", model, "--cases", "wrong.yaml"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("FAIL exporting PII is denied: expected allow, got deny");
    const asJson = await sigil(["policy", "test", model, "--cases", "wrong.yaml", "--json"]);
    expect(json(asJson)).toMatchObject({ passed: 2, failed: 1 });
  });

  it("test: a case that sets agent.* itself is a usage error (the server sets it)", async () => {
    await writeFile(
      join(dir, "spoof.yaml"),
      "cases:\n  - name: spoof\n    request: { action: read, context: { agent: { trust: 1 } } }\n    expect: { decision: deny }\n",
    );
    const r = await sigil([
      "policy",
      "test",
      join(repoRoot, "examples", "security-model.policy"),
      "--cases",
      "spoof.yaml",
    ]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining("set by the server")]);
  });
});

describe("policy and eval on the API", () => {
  it("push, ls, versions, diff, rollback, get, rm", async () => {
    await writeFile(join(dir, "p.policy"), "policy p {\n  allow: read(docs)\n}\n");
    expect((await sigil(["policy", "push", "p.policy"])).code).toBe(0);
    await writeFile(
      join(dir, "p.policy"),
      "policy p {\n  allow: read(docs)\n  deny: delete(docs)\n}\n",
    );
    expect((await sigil(["policy", "push", "p.policy"])).code).toBe(0);
    const ls = json(await sigil(["policy", "ls", "--json"])) as { policies: { name: string }[] };
    expect(ls.policies.map((p) => p.name)).toContain("p");
    const diff = await sigil(["policy", "diff", "p"]);
    expect([diff.code, diff.stdout]).toEqual([
      0,
      expect.stringContaining("+   deny: delete(docs)"),
    ]);
    expect((await sigil(["policy", "rollback", "p", "1"])).code).toBe(0);
    expect((await sigil(["policy", "get", "p"])).stdout).not.toContain("delete");
    const broken = await writeFile(join(dir, "q.policy"), "policy q {").then(() =>
      sigil(["policy", "push", "q.policy"]),
    );
    expect([broken.code, broken.stderr]).toEqual([
      1,
      expect.stringMatching(/policy-invalid.*\d+:\d+/),
    ]);
    expect((await sigil(["policy", "rm", "p"])).code).toBe(0);
  });

  it("eval: allowed exits 0, denied exits 1", async () => {
    expect(
      (await sigil(["policy", "push", join(repoRoot, "examples", "security-model.policy")])).code,
    ).toBe(0);
    const agentFile = join(dir, "eval-agent.json");
    expect(
      (await sigil(["keys", "create", "--role", "agent", "--subject", "e", "--out", agentFile]))
        .code,
    ).toBe(0);
    const ctx = join(dir, "ctx.json");
    await writeFile(
      ctx,
      JSON.stringify({
        user: {
          clearance: "secret",
          need_to_know: ["confidential"],
          background_check: { current: true },
        },
        data: { classification: "confidential" },
        session: { mfa_verified: true, secure_connection: true },
      }),
    );
    const ok = await sigil([
      "eval",
      "--action",
      "read",
      "--resource",
      "sensitive_data",
      "--context",
      `@${ctx}`,
      "--key",
      agentFile,
    ]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining("allow")]);
    const denied = await sigil([
      "eval",
      "--action",
      "export",
      "--resource",
      "data",
      "--context",
      '{"data":{"contains_pii":true}}',
      "--key",
      agentFile,
      "--json",
    ]);
    expect(denied.code).toBe(1);
    expect(json(denied).decision).toBe("deny");
    const spoof = await sigil([
      "eval",
      "--action",
      "read",
      "--context",
      '{"agent":{"trust":1}}',
      "--key",
      agentFile,
    ]);
    expect([spoof.code, spoof.stderr]).toEqual([1, expect.stringContaining("reserved-attribute")]);
  });
});

describe("jobs", () => {
  let trusted: string;
  let untrusted: string;
  beforeAll(async () => {
    expect(
      (
        await sigil(
          ["policy", "push", "-", "--name", "jobs"],
          {},
          "policy jobs {\n  allow: execute(sandbox)\n}\n",
        )
      ).code,
    ).toBe(0);
    trusted = join(dir, "job-trusted.json");
    untrusted = join(dir, "job-untrusted.json");
    expect(
      (
        await sigil([
          "keys",
          "create",
          "--role",
          "agent",
          "--subject",
          "jt",
          "--trust",
          "1",
          "--out",
          trusted,
        ])
      ).code,
    ).toBe(0);
    expect(
      (await sigil(["keys", "create", "--role", "agent", "--subject", "ju", "--out", untrusted]))
        .code,
    ).toBe(0);
  }, 60_000);

  it("run streams output on runc and exits with the job's code, the signature checked", async () => {
    const ok = await sigil(["jobs", "run", "--key", trusted, "--", "echo", "hello from runc"]);
    expect(ok.stdout).toContain("hello from runc");
    expect(ok.stderr).toMatch(/succeeded on docker.*✓ signed by worker/);
    expect(ok.code).toBe(0);
    const three = await sigil([
      "jobs",
      "run",
      "--key",
      trusted,
      "--",
      "sh",
      "-c",
      "echo oops >&2; exit 3",
    ]);
    expect([three.code, three.stderr]).toEqual([3, expect.stringContaining("oops")]);
  }, 120_000);

  it("run takes python code from stdin on gVisor (an untrusted key)", async () => {
    const r = await sigil(
      ["jobs", "run", "-", "--language", "python", "--key", untrusted],
      {},
      "print(6 * 7)\n",
    );
    expect(r.stdout).toContain("42");
    expect(r.stderr).toMatch(/succeeded on gvisor.*✓ signed by worker/);
    expect(r.code).toBe(0);
  }, 120_000);

  it("get and wait check the signature; a tampered result is reported and exits 1", async () => {
    const r = await sigil(["jobs", "run", "--key", trusted, "--json", "--", "echo", "x"]);
    const id = String(json(r).jobId);
    expect(json(r).signatureVerified).toBe(true);
    expect((await sigil(["jobs", "wait", id, "--key", trusted])).code).toBe(0);
    // Tamper with the stored stdout: the CLI, not the API, notices.
    const redis = connectRedis();
    const keys = await redis.keys(`${stack.prefix}:*${id}*`);
    let tampered = false;
    for (const k of keys) {
      if ((await redis.type(k)) !== "hash") continue;
      const stored = await redis.hget(k, "result");
      if (!stored) continue;
      await redis.hset(k, "result", stored.replace('"stdout":"x\\n"', '"stdout":"y\\n"'));
      tampered = true;
    }
    redis.disconnect();
    expect(tampered).toBe(true);
    const got = await sigil(["jobs", "get", id, "--key", trusted]);
    expect([got.code, got.stderr]).toEqual([1, expect.stringContaining("output-mismatch")]);
  }, 120_000);
});

describe("audit", () => {
  it("tail, verify, proof, export and verify-export", async () => {
    // At least five events whatever ran before: policy updates are audited.
    const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
    for (let i = 0; i < 5; i++)
      await admin.policies.put("tail", `policy t${i} {\n  allow: read(t)\n}\n`);
    const tail = await sigil(["audit", "tail", "-n", "5", "--json"]);
    expect([tail.code, tail.stderr]).toEqual([0, ""]);
    expect(tail.stdout.trim().split("\n")).toHaveLength(5);
    const v = await sigil(["audit", "verify", "--json"]);
    expect([v.code, json(v).valid]).toEqual([0, true]);
    const proof = await sigil(["audit", "proof", "0"]);
    expect([proof.code, proof.stdout]).toEqual([
      0,
      expect.stringContaining("✓ event 0 is in the signed tree"),
    ]);
    expect((await sigil(["audit", "export", "--out", "export.ndjson"])).code).toBe(0);
    const jwks = await (await fetch(`${stack.base}/.well-known/sigil/keys`)).text();
    await writeFile(join(dir, "jwks.json"), jwks);
    const off = await sigil(["audit", "verify-export", "export.ndjson", "--keys", "jwks.json"], {
      SIGIL_URL: "http://127.0.0.1:9",
    });
    expect([off.code, off.stdout, off.stderr]).toEqual([0, expect.stringContaining("valid"), ""]);
    const lines = (await readFile(join(dir, "export.ndjson"), "utf8")).split("\n");
    lines[3] = lines[3]!.replace(/"agentId":"[^"]*"/, '"agentId":"mallory"');
    await writeFile(join(dir, "tampered.ndjson"), lines.join("\n"));
    await chmod(join(dir, "tampered.ndjson"), 0o600);
    const bad = await sigil(["audit", "verify-export", "tampered.ndjson", "--keys", "jwks.json"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/invalid at index \d+/);
    // A key set that is not JSON is a usage error naming the file, not a crash.
    await writeFile(join(dir, "broken.json"), "{not json");
    const broken = await sigil([
      "audit",
      "verify-export",
      "export.ndjson",
      "--keys",
      "broken.json",
    ]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("broken.json");
  }, 60_000);

  it("verify names the first bad index after the trail is tampered with in Redis", async () => {
    const redis = connectRedis();
    const keys = await redis.keys(`${stack.prefix}:*`);
    // The event store: find the structure holding event 2 and change one byte of its details.
    let done = false;
    for (const k of keys) {
      const type = await redis.type(k);
      if (type === "hash") {
        const v = await redis.hget(k, "2");
        if (v?.includes('"eventType"')) {
          await redis.hset(k, "2", v.replace('"eventType":"', '"eventType":"x'));
          done = true;
        }
      } else if (type === "list" && !done) {
        const v = await redis.lindex(k, 2);
        if (v?.includes('"eventType"')) {
          await redis.lset(k, 2, v.replace('"eventType":"', '"eventType":"x'));
          done = true;
        }
      }
    }
    redis.disconnect();
    expect(done).toBe(true);
    const r = await sigil(["audit", "verify"]);
    expect([r.code, r.stdout]).toEqual([1, expect.stringContaining("invalid at index 2")]);
  }, 60_000);
});
