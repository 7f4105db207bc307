// The README's first command, as a user runs it: scripts/start.ts (what `npm start` runs after
// infra/setup.sh) brings up the API and a worker, registers the worker's key, and a job submitted
// through the SDK comes back signed by that worker, whose key /.well-known/sigil/keys publishes.
// On a non-default port, which once left the worker reporting to :8787. The README's tour runs
// against the same instance, word for word.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";
import { runLowRisk } from "../jobs/support/harness";
import { expectSignedBy } from "../jobs/support/result";
import { type Stack, startStack } from "../support/stack";
import { repoRoot } from "../support/vectors";

let stack: Stack;
let base: string;
let dataDir: string;

beforeAll(async () => {
  stack = await startStack("start");
  base = stack.base;
  dataDir = stack.dataDir;
}, 120_000);

afterAll(async () => stack?.stop(), 60_000);

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
