// `npm run bench [-- name ...]`: runs the benchmarks one after another, each printing ours beside
// its anchor measured in the same run. Names: crypto, policy, audit, http, approvals, sandbox, jobs, hsm, incidents,
// incident-latency, compliance, egress, console, deploy.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const all = [
  "crypto",
  "policy",
  "audit",
  "http",
  "approvals",
  "sandbox",
  "jobs",
  "hsm",
  "incidents",
  "incident-latency",
  "compliance",
  "egress",
  "console",
  "deploy",
];
const picked = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = picked.length > 0 ? picked : all;
const unknown = names.filter((n) => !all.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; choose from ${all.join(", ")}`);
  process.exit(2);
}

for (const name of names) {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  if (!existsSync(file)) {
    console.log(`\n## ${name}: not present, skipped`);
    continue;
  }
  console.log(`\n## ${name}`);
  const mod = (await import(file)) as { bench: () => Promise<void> };
  await mod.bench();
}
process.exit(0);
