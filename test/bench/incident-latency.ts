// Detection-to-mitigation latency (docs/incidents.md "Measured"; goal p99 ≤ 1 s): one Node API
// process as `npm run api` starts it, detection on with its defaults, under a background load of
// ordinary signed evaluations. Each round an agent key replays a request; from the moment the
// replay's refusal is answered (its auth.failed event is appended before the answer) the key keeps
// sending fresh signed requests until one is refused (403 quarantined, or 401 once revoked). The
// ordinary requests' latency, measured in the same run, is the anchor.
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { newKey, type TestKey } from "../support/targets";
import { startBenchApi } from "./api-process";

const ROUNDS = Number(process.env.SIGIL_BENCH_INCIDENT_ROUNDS ?? 40);
const BACKGROUND = Number(process.env.SIGIL_BENCH_INCIDENT_BACKGROUND ?? 4);

const POLICY = "policy p {\n  allow: read(doc)\n}\n";

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

export async function bench(): Promise<void> {
  const api = await startBenchApi({ SIGIL_INCIDENTS_ENABLED: "true" });
  const { base, admin } = api;
  const register = async (subject: string): Promise<TestKey> => {
    const k = await newKey();
    await admin.keys.create({ role: "agent", subject, publicKey: toBase64Url(k.publicKey) });
    return k;
  };
  /** A signed request, sent once (or twice: a replay), answering the status of the last. */
  const signed = async (k: TestKey, path: string, body?: unknown, times = 1) => {
    const url = `${base}${path}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers = new Headers(text ? { "content-type": "application/json" } : {});
    const sig = await signRequest(
      { method: text ? "POST" : "GET", url, headers, body: text },
      k.signer,
      {
        keyid: k.kid,
      },
    );
    for (const [h, v] of Object.entries(sig)) if (v) headers.set(h, v);
    let status = 0;
    for (let i = 0; i < times; i++) {
      const r = await fetch(url, { method: text ? "POST" : "GET", headers, body: text });
      await r.arrayBuffer();
      status = r.status;
    }
    return status;
  };
  try {
    // startBenchApi waits 20 s for /health; a loaded machine may need longer.
    for (let i = 0; i < 300; i++) {
      const up = await fetch(`${base}/health`).then(
        () => true,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await admin.policies.put("p", POLICY);
    const ordinary: number[] = [];
    let stop = false;
    const background = await Promise.all(
      Array.from({ length: BACKGROUND }, (_, i) => register(`bench-ordinary-${i}`)),
    );
    const load = background.map(async (k) => {
      while (!stop) {
        const t0 = performance.now();
        const s = await signed(k, "/v1/evaluate", { action: "read", resource: "doc", context: {} });
        if (s !== 200) throw new Error(`ordinary request answered ${s}`);
        ordinary.push(performance.now() - t0);
      }
    });
    const latencies: number[] = [];
    const refusedWith = new Map<number, number>();
    for (let i = 0; i < ROUNDS; i++) {
      const k = await register(`bench-attacker-${i}`);
      if ((await signed(k, "/v1/jobs", undefined, 2)) !== 401) throw new Error("no replay refusal");
      const t0 = performance.now();
      for (;;) {
        const s = await signed(k, "/v1/jobs");
        if (s === 403 || s === 401) {
          latencies.push(performance.now() - t0);
          refusedWith.set(s, (refusedWith.get(s) ?? 0) + 1);
          break;
        }
        if (performance.now() - t0 > 30_000) throw new Error("not mitigated within 30 s");
      }
    }
    stop = true;
    await Promise.all(load);
    const o50 = pct(ordinary, 50);
    const o99 = pct(ordinary, 99);
    const l50 = pct(latencies, 50);
    const l99 = pct(latencies, 99);
    console.log("| path | n | p50 ms | p99 ms | ratio p50 | ratio p99 |");
    console.log("|---|---|---|---|---|---|");
    console.log(
      `| ordinary signed evaluation, ${BACKGROUND} concurrent (anchor) | ${ordinary.length} | ${o50.toFixed(1)} | ${o99.toFixed(1)} | 1 | 1 |`,
    );
    console.log(
      `| incident-latency: replay appended → first refused request | ${latencies.length} | ${l50.toFixed(1)} | ${l99.toFixed(1)} | ${(l50 / o50).toFixed(1)} | ${(l99 / o99).toFixed(1)} |`,
    );
    console.log(
      `(refused with: ${[...refusedWith].map(([s, n]) => `${s} ×${n}`).join(", ")}; [incidents] poll_ms default; goal p99 ≤ 1000 ms)`,
    );
  } finally {
    await api.stop();
  }
}
