// `npm start`: the Node API and one worker, side by side, after infra/setup.sh has run.
// Registers the local worker's key (role worker) through the API with the local admin key, as
// an operator would. Stops both when either exits, or on SIGINT/SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadNodeConfigOrExit } from "../platform/node/config";
import { SigilError } from "../sdk";
import { devAdminClient } from "../sdk/node";
import { DEFAULT_API_URL } from "../shared/config";

const config = loadNodeConfigOrExit();
const dataDir = resolve(config.server.data_dir);
const children: ChildProcess[] = [];
let stopping = false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(name: string, script: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    stdio: "inherit",
    env: { ...process.env, SIGIL_DATA_DIR: dataDir, ...env },
  });
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`[sigil] ${name} exited (${signal ?? code}); stopping`);
      stop(code ?? 1);
    }
  });
  children.push(child);
  return child;
}

function stop(code: number) {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  setTimeout(() => process.exit(code), 15_000).unref();
  Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.on("exit", r)) : null)),
  ).then(() => process.exit(code));
}
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

run("api", "functions/node/main.ts");
const base = `http://${config.server.host === "0.0.0.0" ? "127.0.0.1" : config.server.host}:${config.server.port}`;
let healthy = false;
for (let i = 0; i < 150 && !healthy; i++) {
  try {
    const r = await fetch(`${base}/health`);
    const body = (await r.json()) as {
      status: string;
      checks: { name: string; ok: boolean; detail?: string }[];
    };
    console.log(`[sigil] api at ${base} — /health ${r.status} ${body.status}`);
    for (const c of body.checks)
      console.log(`[sigil]   ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail ?? ""}`);
    healthy = true;
  } catch {
    await sleep(200);
  }
}

// The worker reports to the API this script started, unless an API URL was configured: with a
// non-default port or host, the default api_url would point at nothing.
run(
  "worker",
  "worker/main.ts",
  process.env.SIGIL_API_URL === undefined && config.sandbox.api_url === DEFAULT_API_URL
    ? { SIGIL_API_URL: base }
    : {},
);

// The worker writes its public key on first start; register it once (409 = already registered).
const pubPath = join(dataDir, "worker", "worker-key.pub.jwk");
let registered = false;
for (let i = 0; i < 150; i++) {
  const jwk = await readFile(pubPath, "utf8").catch(() => undefined);
  if (jwk) {
    try {
      const admin = await devAdminClient({ baseUrl: base, dataDir });
      const key = JSON.parse(jwk) as { x: string };
      await admin.keys.create({ role: "worker", subject: "local-worker", publicKey: key.x });
      console.log("[sigil] registered the local worker key (role worker)");
      registered = true;
    } catch (e) {
      if (e instanceof SigilError && e.status === 409) registered = true;
      else console.error(`[sigil] could not register the worker key: ${(e as Error).message}`);
    }
    break;
  }
  await sleep(200);
}
if (!registered) {
  console.error(
    `[sigil] the worker key (${pubPath}) is not registered: jobs will be refused until an admin registers it with role worker`,
  );
}
console.log(`[sigil] admin key: ${join(dataDir, "admin-key.json")} — API reference: ${base}/docs`);
