// The labelled incident corpora (docs/incidents.md "Measured"), generated with seeded randomness
// and kept in the repository (test/vectors/incidents/): one attack family per detector with
// variations, and a benign workload of 100 agents over 10 simulated minutes (normal failures,
// occasional denials, retries, bursts of their own traffic). `npx tsx test/bench/corpora/incidents.ts`
// rewrites the files; test/incidents/corpus.test.ts checks they are what the seed gives.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const SEED = 18;
export const T0 = Date.parse("2026-12-01T09:00:00.000Z");
const MINUTES = 10;
const AGENTS = 100;
const VARIATIONS = 25;

export interface CorpusEvent {
  /** ms after T0. */
  t: number;
  type: string;
  agent: string;
  d?: Record<string, unknown>;
}

export interface Attack {
  id: string;
  detector: string;
  /** The subject the incident must name (key id, subject or worker). */
  subject: string;
  events: CorpusEvent[];
}

/** mulberry32: small, seeded, the same on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const authFailed = (
  t: number,
  kid: string,
  code: string,
  detail = "signature does not verify",
): CorpusEvent => ({
  t,
  type: "auth.failed",
  agent: kid,
  d: { code, detail, source: `key:${kid}` },
});

/** The benign workload: 100 agents, each with its own rate, failures and habits. */
export function benign(seed = SEED): CorpusEvent[] {
  const r = rng(seed);
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const out: CorpusEvent[] = [];
  const span = MINUTES * 60_000;
  let job = 0;
  for (let a = 0; a < AGENTS; a++) {
    const kid = `agent-${String(a).padStart(3, "0")}`;
    const perMinute = int(2, 40);
    // A few agents have a busy spell: up to 3× their own rate for a minute (benign bursts).
    const busy = r() < 0.15 ? int(1, MINUTES - 1) : -1;
    for (let m = 0; m < MINUTES; m++) {
      const n = m === busy ? perMinute * int(2, 3) : perMinute;
      for (let k = 0; k < n; k++) {
        const t = m * 60_000 + Math.floor(r() * 60_000);
        const x = r();
        if (x < 0.55)
          out.push({ t, type: "tool.invoked", agent: kid, d: { tool: `t${int(1, 9)}` } });
        else if (x < 0.85)
          out.push({ t, type: "policy.decision", agent: kid, d: { decision: "allow" } });
        else if (x < 0.97) {
          const jobId = `job-${job++}`;
          out.push({ t, type: "job.submitted", agent: kid, d: { jobId } });
          // Most jobs succeed; some time out or fail; rarely one runs out of memory.
          const y = r();
          const status =
            y < 0.85 ? "succeeded" : y < 0.93 ? "failed" : y < 0.985 ? "timeout" : "oom";
          out.push({
            t: t + int(500, 20_000),
            type: status === "succeeded" ? "job.completed" : "job.failed",
            agent: "worker-kid-1",
            d: { jobId, status },
          });
        } else out.push({ t, type: "message.routed", agent: kid, d: {} });
      }
    }
    // Occasional denials: a misconfigured agent asks for what it may not do, a handful of times.
    for (let k = int(0, 6); k > 0; k--)
      out.push({
        t: int(0, span - 1),
        type: "policy.violation",
        agent: kid,
        d: { decision: "deny" },
      });
    // Normal authentication failures: a clock skew or a bad deploy, retried a few times.
    if (r() < 0.3) {
      const t = int(0, span - 10_000);
      for (let k = int(1, 6); k > 0; k--)
        out.push(authFailed(t + k * int(200, 2000), kid, "signature-invalid"));
    }
    // A retried request that raced its own nonce (a client bug, not an attacker) is not a replay
    // of a known key's request by someone else; it shows as a stale timestamp instead.
    if (r() < 0.1) out.push(authFailed(int(0, span - 1), kid, "replay", "created too old"));
  }
  // Anonymous noise: scanners without any key, a few requests each.
  for (let s = 0; s < 20; s++) {
    const source = `address:198.51.100.${s}`;
    const t = int(0, span - 30_000);
    for (let k = int(1, 5); k > 0; k--)
      out.push({
        t: t + k * 1000,
        type: "auth.failed",
        agent: "anonymous",
        d: { code: "auth-required", source },
      });
  }
  return out.sort((x, y) => x.t - y.t);
}

/** One family per detector, VARIATIONS sequences each (counts, pacing, interleaving vary). */
export function attacks(seed = SEED): Attack[] {
  const r = rng(seed * 7919);
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const out: Attack[] = [];
  for (let v = 0; v < VARIATIONS; v++) {
    const start = int(60_000, 4 * 60_000);
    const kid = `evil-${v}`;
    // Failed-auth burst: 20–60 failures inside the minute, variously paced.
    {
      const n = int(20, 60);
      const spread = int(5_000, 55_000);
      const events = Array.from({ length: n }, (_, k) =>
        authFailed(
          start + Math.floor((k * spread) / n),
          kid,
          r() < 0.5 ? "signature-invalid" : "key-revoked",
        ),
      );
      out.push({ id: `failed-auth-${v}`, detector: "failed-auth-burst", subject: kid, events });
    }
    // Replay: one to three requests replayed with a used nonce.
    out.push({
      id: `replay-${v}`,
      detector: "replay",
      subject: kid,
      events: Array.from({ length: int(1, 3) }, (_, k) =>
        authFailed(start + k * int(10, 5000), kid, "replay", "nonce already used"),
      ),
    });
    // Policy-violation burst: 20–150 denials within a minute.
    {
      const n = int(20, 150);
      const spread = int(3_000, 55_000);
      out.push({
        id: `policy-${v}`,
        detector: "policy-violation-burst",
        subject: kid,
        events: Array.from({ length: n }, (_, k) => ({
          t: start + Math.floor((k * spread) / n),
          type: "policy.violation",
          agent: kid,
          d: { decision: "deny", action: r() < 0.5 ? "read" : "execute" },
        })),
      });
    }
    // Key pin mismatch: a tool provider serving another key.
    const domain = `tools-${v}.example`;
    out.push({
      id: `pin-${v}`,
      detector: "key-pin-mismatch",
      subject: domain,
      events: [
        {
          t: start,
          type: "security.event",
          agent: `agent-${String(int(0, 99)).padStart(3, "0")}`,
          d: { category: "tool.key_pin_mismatch", domain, severity: "high" },
        },
      ],
    });
    // Forged or conflicting job result from a worker key.
    const worker = `worker-evil-${v}`;
    out.push({
      id: `forged-${v}`,
      detector: "forged-job-result",
      subject: worker,
      events: [
        {
          t: start,
          type: "security.event",
          agent: worker,
          d: {
            category: r() < 0.5 ? "job.result_refused" : "job.result_conflict",
            workerKid: worker,
            jobId: `evil-job-${v}`,
            reason: "bad-signature",
            severity: "high",
          },
        },
      ],
    });
    // Sandbox escape signals: jobs of one key repeatedly killed or caught writing outside /work.
    {
      const n = int(3, 8);
      const events: CorpusEvent[] = [];
      for (let k = 0; k < n; k++) {
        const jobId = `escape-${v}-${k}`;
        const t = start + k * int(5_000, 60_000);
        events.push({ t, type: "job.submitted", agent: kid, d: { jobId } });
        events.push(
          r() < 0.6
            ? {
                t: t + 2000,
                type: "job.failed",
                agent: "worker-kid-1",
                d: { jobId, status: r() < 0.5 ? "oom" : "killed" },
              }
            : {
                t: t + 2000,
                type: "security.event",
                agent: "worker-kid-1",
                d: { category: "sandbox.write_outside_work", jobId, severity: "high" },
              },
        );
      }
      out.push({ id: `sandbox-${v}`, detector: "sandbox-escape-signals", subject: kid, events });
    }
    // Audit integrity: verification found a bad event.
    out.push({
      id: `integrity-${v}`,
      detector: "audit-integrity",
      subject: "audit-trail",
      events: [
        {
          t: start,
          type: "security.event",
          agent: "system",
          d: { category: "audit.integrity", index: int(0, 10_000), severity: "critical" },
        },
      ],
    });
    // Resource anomaly: a steady agent whose rate jumps 15–60× for a minute.
    {
      const base = int(3, 20);
      const events: CorpusEvent[] = [];
      for (let m = 0; m < 8; m++)
        for (let k = 0; k < base; k++)
          events.push({
            t: m * 60_000 + Math.floor((k * 60_000) / base),
            type: "tool.invoked",
            agent: kid,
          });
      const burst = Math.max(320, base * int(15, 60));
      for (let k = 0; k < burst; k++)
        events.push({
          t: 8 * 60_000 + Math.floor((k * 59_000) / burst),
          type: "tool.invoked",
          agent: kid,
        });
      out.push({ id: `anomaly-${v}`, detector: "resource-anomaly", subject: kid, events });
    }
  }
  return out;
}

export const CORPUS_DIR = new URL("../../vectors/incidents/", import.meta.url);

export function corpusFiles(seed = SEED): { benign: string; attacks: string } {
  const nd = (xs: unknown[]) => `${xs.map((x) => JSON.stringify(x)).join("\n")}\n`;
  return { benign: nd(benign(seed)), attacks: nd(attacks(seed)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = corpusFiles();
  writeFileSync(new URL("benign.ndjson", CORPUS_DIR), f.benign);
  writeFileSync(new URL("attacks.ndjson", CORPUS_DIR), f.attacks);
  console.log("wrote test/vectors/incidents/{benign,attacks}.ndjson");
}
