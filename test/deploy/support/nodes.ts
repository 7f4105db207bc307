// Sigil processes for the deployment tests: API processes (`functions/node/main.ts`, as
// `npm run api` / sigil-api@.service start them) and worker nodes (a real startWorkerNode process,
// test/jobs/support/worker-proc.ts), each in its own process group on a free port with its own
// environment, so a test can kill one with any signal and afterAll can kill every group it
// started, also when the test failed. docs/deployment.md "Proven here".
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sigil } from "../../../sdk";
import { publicJwk } from "../../../shared/crypto";
import { toBase64Url } from "../../../shared/encoding";
import { loadOrCreateWorkerKey } from "../../../worker/jobs/keys";
import { newKey, type TestKey } from "../../support/targets";
import { repoRoot } from "../../support/vectors";
import { freePort, waitFor } from "./sentinel";

export interface NodeProc {
  name: string;
  proc: ChildProcess;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

export interface ApiNode extends NodeProc {
  base: string;
}

export interface WorkerNodeProc extends NodeProc {
  workerId: string;
  kid: string;
  publicKey: Uint8Array;
}

/** Everything a group of Sigil processes shares, and the cleanup of all of it. */
export class Fleet {
  readonly procs: NodeProc[] = [];
  readonly dirs: string[] = [];
  readonly workerIds: string[] = [];
  /** The admin key every API process accepts (SIGIL_ADMIN_KEYS). */
  admin!: TestKey;

  static async create(): Promise<Fleet> {
    const f = new Fleet();
    f.admin = await newKey();
    return f;
  }

  /** The environment every process of this fleet gets before its own. */
  env(extra: Record<string, string>): Record<string, string> {
    return {
      SIGIL_LOG_LEVEL: "warn",
      SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(this.admin.publicKey, { kid: this.admin.kid })]),
      // Every API process shares the secret that MACs Redis records and encrypts keys at rest.
      SIGIL_KEY_PASSPHRASE: "deploy-test-passphrase",
      SIGIL_LIMITS_REQUESTS_PER_SECOND: "1000000",
      SIGIL_LIMITS_EVALUATIONS_PER_SECOND: "1000000",
      SIGIL_LIMITS_AUDIT_APPENDS_PER_SECOND: "1000000",
      ...extra,
    };
  }

  tempDir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `sigil-${name}-`));
    this.dirs.push(d);
    return d;
  }

  private spawn(name: string, args: string[], env: Record<string, string>): NodeProc {
    const proc = spawn(process.execPath, ["--import", "tsx", ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: killGroup reaches whatever it started too.
      detached: true,
    });
    let out = "";
    const take = (b: Buffer) => {
      // Keep the tail only: a long run must not hold every log line.
      out = (out + b.toString()).slice(-200_000);
    };
    proc.stdout?.on("data", take);
    proc.stderr?.on("data", take);
    const exited = new Promise<void>((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) r();
      else proc.once("exit", () => r());
    });
    const n: NodeProc = { name, proc, output: () => out, exited };
    this.procs.push(n);
    return n;
  }

  /** An API process on a free port; resolves once it answers /health. */
  async api(name: string, env: Record<string, string>): Promise<ApiNode> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const n = this.spawn(
      name,
      ["functions/node/main.ts"],
      this.env({ PORT: String(port), ...env }),
    );
    await waitFor(
      `${name} answering /health`,
      async () => {
        if (n.proc.exitCode !== null) throw new Error(`${name} exited: ${n.output()}`);
        return fetch(`${base}/health`).then(
          () => true,
          () => false,
        );
      },
      150_000,
    );
    return { ...n, base };
  }

  /**
   * A worker node with its own id, key and data dir; its key is registered (role worker) through
   * `admin` before it starts. Resolves once it consumes jobs.
   */
  async worker(
    name: string,
    admin: Sigil,
    apiUrl: string,
    env: Record<string, string>,
  ): Promise<WorkerNodeProc> {
    const dir = this.tempDir(name);
    const workerId = `${name}-${process.pid}-${Date.now()}`;
    this.workerIds.push(workerId);
    const key = await loadOrCreateWorkerKey(join(dir, "worker"));
    await admin.keys.create({
      role: "worker",
      subject: workerId,
      publicKey: toBase64Url(key.signer.publicKey),
    });
    const n = this.spawn(
      name,
      ["test/jobs/support/worker-proc.ts"],
      this.env({
        SIGIL_DATA_DIR: dir,
        SIGIL_API_URL: apiUrl,
        SIGIL_WORKER_ID: workerId,
        SIGIL_SANDBOX_WARM_POOL_SIZE: "0",
        ...env,
      }),
    );
    await waitFor(
      `${name} ready`,
      async () => {
        if (n.proc.exitCode !== null) throw new Error(`${name} exited: ${n.output()}`);
        return n.output().includes("worker ready");
      },
      150_000,
    );
    return { ...n, workerId, kid: key.signer.kid, publicKey: key.signer.publicKey };
  }

  client(base: string, key: TestKey = this.admin): Sigil {
    return new Sigil({ baseUrl: base, keyId: key.kid, signer: key.signer, retries: 0 });
  }

  /**
   * Stops everything: SIGTERM to each group still running (a worker removes its containers),
   * SIGKILL to whatever is left after `graceMs`, then the containers of this fleet's workers and
   * the temp dirs.
   */
  async stop(graceMs = 5_000): Promise<void> {
    const running = this.procs.filter(
      (p) => p.proc.exitCode === null && p.proc.signalCode === null,
    );
    for (const p of running) signalGroup(p.proc, "SIGTERM");
    await Promise.race([
      Promise.all(running.map((p) => p.exited)),
      new Promise((r) => setTimeout(r, graceMs)),
    ]);
    for (const p of this.procs) signalGroup(p.proc, "SIGKILL");
    for (const id of this.workerIds) {
      try {
        const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=sigil.worker=${id}`], {
          encoding: "utf8",
        })
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) execFileSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
      } catch {
        // docker unavailable: nothing of ours can be running there
      }
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Signals a child's whole process group (it was spawned detached, as its group's leader). */
export function signalGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  if (p.pid === undefined) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    // already gone
  }
}
