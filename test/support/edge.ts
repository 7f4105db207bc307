// Starts the edge app under real workerd (`wrangler dev`, Miniflare) on free ports, with its own
// persistence directory, for tests that must behave the same on the edge as on Node.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./vectors";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export interface EdgeInstance {
  url: string;
  stop(): Promise<void>;
  output(): string;
}

/** A free port can be taken by another test between freePort() and wrangler's bind: try again. */
export async function startEdge(
  vars: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<EdgeInstance> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEdgeOnce(vars, timeoutMs);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test((e as Error).message)) throw e;
    }
  }
}

async function startEdgeOnce(
  vars: Record<string, string>,
  timeoutMs: number,
): Promise<EdgeInstance> {
  const port = await freePort();
  const inspector = await freePort();
  const persist = mkdtempSync(join(tmpdir(), "sigil-edge-"));
  // wrangler refuses an [assets] directory that does not exist; /console answers 503 when empty.
  mkdirSync(join(repoRoot, "console", "dist"), { recursive: true });
  const args = [
    "wrangler",
    "dev",
    "--port",
    String(port),
    "--ip",
    "127.0.0.1",
    "--inspector-port",
    String(inspector),
    "--persist-to",
    persist,
    "--show-interactive-dev-session=false",
    "--log-level",
    "warn",
    // The edge answers requests signed for its configured host:port (default allowed_authorities).
    // Incident detection steps after every response once enabled; tests that do not put it under
    // test turn it off (a replay or a failed-auth burst there would revoke their keys).
    ...Object.entries({
      SIGIL_SERVER_PORT: String(port),
      SIGIL_INCIDENTS_ENABLED: "false",
      ...vars,
    }).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ];
  let out = "";
  const child: ChildProcess = spawn("npx", args, {
    cwd: repoRoot,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await new Promise((r) => {
        const t = setTimeout(() => {
          try {
            if (child.pid) process.kill(-child.pid, "SIGKILL");
          } catch {}
          r(undefined);
        }, 5000);
        child.on("exit", () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    rmSync(persist, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      rmSync(persist, { recursive: true, force: true });
      throw new Error(`wrangler dev exited early:\n${out}`);
    }
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200 || r.status === 503) return { url, stop, output: () => out };
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not answer within ${timeoutMs} ms:\n${out}`);
}
