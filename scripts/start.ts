// `npm start`: the Node API and one worker, side by side, after infra/setup.sh has run.
// Stops both when either exits or on SIGINT/SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { loadNodeConfigOrExit } from "../functions/node/config";

const config = loadNodeConfigOrExit();
const children: ChildProcess[] = [];
let stopping = false;

function run(name: string, script: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    stdio: "inherit",
    env: process.env,
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

const base = `http://${config.server.host}:${config.server.port}`;
for (let i = 0; i < 100; i++) {
  try {
    const r = await fetch(`${base}/health`);
    const body = (await r.json()) as { status: string };
    console.log(`[sigil] api at ${base} — /health: ${r.status} ${body.status}`);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 200));
  }
}
run("worker", "worker/main.ts");
