// Policy evaluation: Sigil vs @cedar-policy/cedar-wasm (statefulIsAuthorized over a
// preparsed policy set), side by side in one process, on equivalent policies:
//   1. the seed's secure_data_access, translated to Cedar;
//   2. a generated set of 1,000 policies over 100 actions.
// Sigil runs with the decision cache disabled; the cached figure is reported separately.
// Then the hostile payloads of issue 15 (budget bombs): how long each blocks the event loop.
// Run: npx tsx test/bench/policy.ts
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import {
  type Decision,
  type EvaluationRequest,
  type JsonObject,
  MemoryPolicyStore,
  PolicyEngine,
} from "../../shared/policy";
import { SECURE_DATA_ACCESS } from "../policy/fixtures";

interface Case {
  sigil: EvaluationRequest;
  cedar: cedar.StatefulAuthorizationCall;
}

interface Scenario {
  name: string;
  sigilSource: string;
  cedarSource: string;
  cases: Case[];
}

const LEVELS = ["public", "internal", "confidential", "secret", "top_secret"];

// ---- scenario 1: secure_data_access ---------------------------------------------------

// Cedar has no ordered strings, so the classification level travels as its rank; the
// untargeted require's conditions join the permit (Cedar has no obligations).
const SECURE_DATA_ACCESS_CEDAR = `
permit(principal, action == Action::"read", resource == Resource::"sensitive_data")
when {
  context.user.clearance_rank >= 3 &&
  context.user.need_to_know.contains(context.data.classification) &&
  context.session.mfa_verified == true &&
  context.user.background_check.current &&
  context.session.secure_connection
};
forbid(principal, action == Action::"export", resource == Resource::"data")
when { context.data.contains_pii == true };
`;

function call(
  action: string,
  resource: string,
  context: Record<string, cedar.CedarValueJson>,
  pset: string,
): cedar.StatefulAuthorizationCall {
  return {
    principal: { type: "User", id: "agent" },
    action: { type: "Action", id: action },
    resource: { type: "Resource", id: resource },
    context,
    preparsedPolicySetId: pset,
    entities: [],
  };
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function secureDataAccess(): Scenario {
  const rand = rng(7);
  const cases: Case[] = [];
  for (let i = 0; i < 512; i++) {
    const level = Math.floor(rand() * LEVELS.length);
    const cls = ["finance", "hr", "legal"][Math.floor(rand() * 3)]!;
    const user = {
      need_to_know: ["finance", "hr"],
      background_check: { current: rand() < 0.9 },
    };
    const session = { mfa_verified: rand() < 0.8, secure_connection: rand() < 0.9 };
    const data = { classification: cls, contains_pii: rand() < 0.5 };
    const [action, resource] = rand() < 0.75 ? ["read", "sensitive_data"] : ["export", "data"];
    const sigilCtx: JsonObject = { user: { ...user, clearance: LEVELS[level]! }, session, data };
    const cedarCtx = { user: { ...user, clearance_rank: level }, session, data };
    cases.push({
      sigil: { action, resource, context: sigilCtx },
      cedar: call(action, resource, cedarCtx, "sda"),
    });
  }
  return {
    name: "secure_data_access",
    sigilSource: SECURE_DATA_ACCESS,
    cedarSource: SECURE_DATA_ACCESS_CEDAR,
    cases,
  };
}

// ---- scenario 2: 1,000 policies over 100 actions --------------------------------------

function generated(): Scenario {
  const sig: string[] = [];
  const ced: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const a = `act${i % 100}`;
    const r = `res${Math.floor(i / 100)}`;
    if (i % 10 === 9) {
      sig.push(`policy p${i} {\n    deny: ${a}(${r}) if ctx.risk > ${50 + (i % 40)}\n}`);
      ced.push(
        `forbid(principal, action == Action::"${a}", resource == Resource::"${r}") when { context.ctx.risk > ${50 + (i % 40)} };`,
      );
    } else {
      const g = `g${i % 7}`;
      sig.push(
        `policy p${i} {\n    allow: ${a}(${r}) if ctx.level >= ${i % 5} && ctx.groups.contains("${g}")\n}`,
      );
      ced.push(
        `permit(principal, action == Action::"${a}", resource == Resource::"${r}") when { context.ctx.level >= ${i % 5} && context.ctx.groups.contains("${g}") };`,
      );
    }
  }
  const rand = rng(11);
  const cases: Case[] = [];
  for (let i = 0; i < 2048; i++) {
    const action = `act${Math.floor(rand() * 100)}`;
    const resource = `res${Math.floor(rand() * 10)}`;
    const groups = ["g0", "g1", "g2", "g3", "g4", "g5", "g6"].filter(() => rand() < 0.5);
    const ctx = { level: Math.floor(rand() * 6), risk: Math.floor(rand() * 100), groups };
    cases.push({
      sigil: { action, resource, context: { ctx } },
      cedar: call(action, resource, { ctx }, "gen"),
    });
  }
  return {
    name: "1,000 policies / 100 actions",
    sigilSource: sig.join("\n\n"),
    cedarSource: ced.join("\n"),
    cases,
  };
}

// ---- measurement ------------------------------------------------------------------------

interface Stats {
  opsPerSec: number;
  p50: number;
  p99: number;
}

function measure(fn: (i: number) => unknown, n: number, ms: number): Stats {
  // Warm up (JIT) for up to 20k calls or 500 ms, whichever comes first.
  const w0 = performance.now();
  for (let i = 0; i < Math.min(n * 2, 20_000) && performance.now() - w0 < 500; i++) fn(i);
  // Throughput: no per-call timers.
  let count = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    for (let k = 0; k < 256; k++) fn(count++);
    now = performance.now();
  }
  const opsPerSec = count / ((now - t0) / 1000);
  // Latency: one timer pair per call.
  const samples = new Float64Array(Math.min(count, 200_000));
  for (let i = 0; i < samples.length; i++) {
    const a = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - a) / 1000;
  }
  samples.sort();
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { opsPerSec, p50: q(0.5), p99: q(0.99) };
}

const outcome = (d: Decision): "allow" | "deny" => (d.decision === "deny" ? "deny" : "allow");

async function runScenario(s: Scenario, ms: number) {
  const id = s.cases[0]!.cedar.preparsedPolicySetId;
  const parsed = cedar.preparsePolicySet(id, { staticPolicies: s.cedarSource });
  if (parsed.type !== "success") throw new Error(`cedar parse: ${JSON.stringify(parsed.errors)}`);

  const store = new MemoryPolicyStore();
  const plain = await PolicyEngine.create({ store, cache: false });
  const put = await plain.put("bench", s.sigilSource);
  if (!put.ok) throw new Error(`sigil parse: ${JSON.stringify(put.errors)}`);
  const cached = await PolicyEngine.create({ store });

  // The two engines must agree before their speed means anything.
  let allows = 0;
  for (const c of s.cases) {
    const a = outcome(plain.evaluate(c.sigil));
    const r = cedar.statefulIsAuthorized(c.cedar);
    if (r.type !== "success") throw new Error(`cedar: ${JSON.stringify(r.errors)}`);
    if (a !== r.response.decision) {
      throw new Error(
        `disagreement on ${JSON.stringify(c.sigil)}: sigil ${a}, cedar ${r.response.decision}`,
      );
    }
    if (a === "allow") allows++;
  }

  const n = s.cases.length;
  const cedarStats = measure((i) => cedar.statefulIsAuthorized(s.cases[i % n]!.cedar), n, ms);
  const sigilStats = measure((i) => plain.evaluate(s.cases[i % n]!.sigil), n, ms);
  const cachedStats = measure((i) => cached.evaluate(s.cases[i % n]!.sigil), n, ms);
  return { cedarStats, sigilStats, cachedStats, allows, n };
}

const fmt = (x: number, d = 2) => x.toFixed(d).padStart(10);

// ---- hostile payloads (issue 15, item 7) ------------------------------------------------

const STRING_BOMB = `policy bomb {
  allow: go
  deny: go if any(xs, |i| len(${Array.from({ length: 16 }, () => "a").join(" + ")}) < 0)
}`;
const CONTAINS = "policy grant { allow: use if all(requested, |s| granted.contains(s)) }";

async function hostile(): Promise<string[]> {
  const e = await PolicyEngine.create({ store: new MemoryPolicyStore(), cache: false });
  for (const [name, src] of [
    ["bomb", STRING_BOMB],
    ["grant", CONTAINS],
  ] as const) {
    const put = await e.put(name, src);
    if (!put.ok) throw new Error(`sigil parse: ${JSON.stringify(put.errors)}`);
  }
  const rows: string[] = [];
  // 1. One request, a 16 KB string and 9,000 items: evaluation is synchronous, so the time it
  //    takes is the time the event loop is blocked.
  const bomb: EvaluationRequest = {
    action: "go",
    context: { a: "x".repeat(16_384), xs: Array.from({ length: 9000 }, (_, i) => i) },
  };
  const kb = (v: unknown) => JSON.stringify(v).length / 1024;
  const times: number[] = [];
  let d: Decision | undefined;
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    d = e.evaluate(bomb);
    times.push(performance.now() - t0);
  }
  rows.push(
    `string bomb, 1 request (${kb(bomb).toFixed(0)} KB)`.padEnd(48) +
      `first ${times[0]!.toFixed(1)} ms, then at most ${Math.max(...times.slice(1)).toFixed(1)} ms blocked; ${d!.decision}: ${d!.errors?.[0]?.message ?? d!.reason}`,
  );
  // 2. A ~1 MB batch of all(requested, |s| granted.contains(s)) through the route's path
  //    (evaluateBatchYielding): the longest event-loop stall while it runs.
  const item: EvaluationRequest = {
    action: "use",
    context: {
      granted: Array.from({ length: 5000 }, (_, i) => `g${i}`),
      requested: Array.from({ length: 4990 }, () => "g4999"),
    },
  };
  const batch = Array.from({ length: Math.floor(1024 / kb(item)) }, () => item);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const out = await e.evaluateBatchYielding(batch);
  const total = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20));
  h.disable();
  rows.push(
    `contains batch, ${batch.length} requests (${kb({ requests: batch }).toFixed(0)} KB)`.padEnd(
      48,
    ) +
      `${total.toFixed(0)} ms in all, longest event-loop stall ${(h.max / 1e6).toFixed(1)} ms; ${out.filter((x) => x.decision === "deny").length} denied`,
  );
  return rows;
}

export async function bench(): Promise<void> {
  const ms = Number(process.env.BENCH_MS ?? 2500);
  const rows: string[] = [];
  const verdicts: string[] = [];
  for (const s of [secureDataAccess(), generated()]) {
    const { cedarStats, sigilStats, cachedStats, allows, n } = await runScenario(s, ms);
    const line = (label: string, st: Stats) =>
      `${s.name.padEnd(30)} ${label.padEnd(26)} ${fmt(st.opsPerSec, 0)} ${fmt(st.p50)} ${fmt(st.p99)} ${fmt(st.opsPerSec / cedarStats.opsPerSec, 1)}×`;
    rows.push(line("cedar-wasm (stateful)", cedarStats));
    rows.push(line("sigil (cache off)", sigilStats));
    rows.push(line("sigil (cache on)", cachedStats));
    rows.push(`${"".padEnd(30)} decisions agree on ${n}/${n} requests (${allows} allow)`);
    const ratio = sigilStats.opsPerSec / cedarStats.opsPerSec;
    verdicts.push(
      `${s.name}: throughput ${ratio.toFixed(1)}× cedar-wasm (goal ≥ 10×: ${ratio >= 10 ? "met" : "NOT met"}), p99 ${sigilStats.p99.toFixed(2)} µs (goal ≤ 20 µs: ${sigilStats.p99 <= 20 ? "met" : "NOT met"})`,
    );
  }
  console.log("\npolicy evaluation — Sigil vs @cedar-policy/cedar-wasm, same process, same run");
  console.log(
    `${"scenario".padEnd(30)} ${"engine".padEnd(26)} ${"ops/s".padStart(10)} ${"p50 µs".padStart(10)} ${"p99 µs".padStart(10)} ${"vs cedar".padStart(11)}`,
  );
  for (const r of rows) console.log(r);
  for (const v of verdicts) console.log(v);
  console.log("\nhostile payloads (issue 15): event-loop block per request");
  for (const r of await hostile()) console.log(r);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  bench().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
