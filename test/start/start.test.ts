// The README's first command, as a user runs it: scripts/start.ts (what `npm start` runs after
// infra/setup.sh) brings up the API and a worker, registers the worker's key, and a job submitted
// through the SDK comes back signed by that worker, whose key /.well-known/sigil/keys publishes.
// On a non-default port, which once left the worker reporting to :8787. The README's tour runs
// against the same instance, word for word.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";
import { runLowRisk } from "../jobs/support/harness";
import { expectSignedBy } from "../jobs/support/result";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { repoRoot } from "../support/vectors";

let proc: ChildProcess;
let output = "";
let base: string;
let dataDir: string;
const prefix = testPrefix("start").replace(/:$/, "");

function waitFor(text: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${text}" within ${ms} ms:\n${output}`)), ms);
    const check = () => {
      if (output.includes(text)) {
        clearTimeout(t);
        resolve();
      } else if (proc.exitCode !== null) {
        clearTimeout(t);
        reject(new Error(`start exited (${proc.exitCode}):\n${output}`));
      } else setTimeout(check, 100);
    };
    check();
  });
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dataDir = await mkdtemp(join(tmpdir(), "sigil-start-"));
  proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      SIGIL_PORT: String(port),
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_LOG_LEVEL: "warn",
      SIGIL_WORKER_ID: `start-test-${port}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  proc.stderr?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  await waitFor("registered the local worker key", 90_000);
}, 120_000);

afterAll(async () => {
  if (proc.exitCode === null) {
    const exited = new Promise((r) => proc.on("exit", r));
    proc.kill("SIGTERM");
    await exited;
  }
  const redis = connectRedis();
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe("npm start on a non-default port", () => {
  it("runs a job end to end; the result verifies with the published worker key", async () => {
    const admin = await devAdminClient({ baseUrl: base, dataDir });
    const kp = await generateEd25519KeyPair();
    await admin.keys.create({
      role: "agent",
      subject: "agent-7",
      publicKey: toBase64Url(kp.publicKey),
      trust: 1, // its low-risk job runs on runc
    });
    await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");
    const agent = new Sigil({ baseUrl: base, secretKey: kp.secretKey });
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(agent, ["echo", "hello from start"], 60_000);
    expect(job.status).toBe("succeeded");
    expect(r.stdout).toBe("hello from start\n");

    const jwks = (await (await fetch(`${base}/.well-known/sigil/keys`)).json()) as {
      keys: { kid: string; x: string; use?: string; role?: string }[];
    };
    const published = jwks.keys.find((k) => k.kid === r.kid);
    expect(published).toBeDefined();
    await expectSignedBy(r, acc.jobId, fromBase64Url(published!.x));
  }, 90_000);

  it("the README's tour (examples/tour.ts) runs to the end against it", async () => {
    const tour = spawn(process.execPath, ["--import", "tsx", "examples/tour.ts"], {
      cwd: repoRoot,
      env: { ...process.env, SIGIL_URL: base, SIGIL_DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let said = "";
    tour.stdout?.on("data", (b: Buffer) => {
      said += b.toString();
    });
    tour.stderr?.on("data", (b: Buffer) => {
      said += b.toString();
    });
    const code = await new Promise<number | null>((r) => tour.on("exit", r));
    expect(said).toContain("read(sensitive_data): allow_with_conditions");
    expect(said).toContain("without MFA: deny");
    expect(said).toMatch(/stdout: 42 \(exit 0/);
    expect(said).toContain(": verified");
    expect(said).toMatch(/chain and signatures: valid/);
    expect(said).toContain("tour complete");
    expect(code, said).toBe(0);
  }, 120_000);
});
