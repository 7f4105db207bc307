// Incident detection accuracy on the labelled corpora kept in test/vectors/incidents/ (generated
// by test/bench/corpora/incidents.ts with a fixed seed): each attack sequence is mixed into the
// whole benign workload and must open an incident of its detector naming its subject (detection
// rate, goal ≥ 99 %); the benign workload alone must flag < 1 % of its agents. Also the engine's
// throughput against an anchor measured in the same run (JSON.parse of the same events).
// The detection-to-mitigation latency needs the quarantine service and is measured with it.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { configSchema } from "../../shared/config";
import {
  type DetectEvent,
  DetectionEngine,
  emptyState,
  type Finding,
} from "../../shared/incidents";
import { type Attack, CORPUS_DIR, type CorpusEvent, T0 } from "./corpora/incidents";

const incidents = configSchema.parse({}).incidents;

function load<T>(name: string): T[] {
  return readFileSync(new URL(name, CORPUS_DIR), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

const toDetect = (evs: readonly CorpusEvent[]): DetectEvent[] =>
  evs.map((e, index) => ({
    index,
    timestamp: new Date(T0 + e.t).toISOString(),
    eventType: e.type,
    agentId: e.agent,
    details: e.d ?? {},
  }));

function detect(events: DetectEvent[]): Finding[] {
  let n = 0;
  const engine = new DetectionEngine({ incidents, sandboxEscapeDetection: true }, () => `i-${++n}`);
  return engine.step(emptyState(), events);
}

/** Merges two time-ordered streams (stable: background first on equal times). */
function merge(a: readonly CorpusEvent[], b: readonly CorpusEvent[]): CorpusEvent[] {
  return [...a, ...b].sort((x, y) => x.t - y.t);
}

export async function bench(): Promise<void> {
  const benign = load<CorpusEvent>("benign.ndjson");
  const attacks = load<Attack>("attacks.ndjson");

  // False positives: the benign workload alone.
  const agents = new Set(benign.filter((e) => e.agent.startsWith("agent-")).map((e) => e.agent));
  const benignFindings = detect(toDetect(benign));
  const flagged = new Set(benignFindings.map((f) => f.subject.id).filter((id) => agents.has(id)));
  const fpRate = flagged.size / agents.size;

  // Detection: each attack inside the whole benign workload.
  const perDetector = new Map<string, { n: number; hit: number }>();
  const missed: string[] = [];
  const t0 = performance.now();
  let processed = 0;
  for (const a of attacks) {
    const events = toDetect(merge(benign, a.events));
    processed += events.length;
    const hit = detect(events).some((f) => f.detector === a.detector && f.subject.id === a.subject);
    const s = perDetector.get(a.detector) ?? { n: 0, hit: 0 };
    s.n++;
    if (hit) s.hit++;
    else missed.push(a.id);
    perDetector.set(a.detector, s);
  }
  const engineMs = performance.now() - t0;
  const detected = [...perDetector.values()].reduce((x, s) => x + s.hit, 0);
  const rate = detected / attacks.length;

  // Anchor: parsing the same number of events from NDJSON.
  const lines = readFileSync(new URL("benign.ndjson", CORPUS_DIR), "utf8")
    .split("\n")
    .filter(Boolean);
  const a0 = performance.now();
  let parsed = 0;
  while (parsed < processed) for (const l of lines) if (parsed++ < processed) JSON.parse(l);
  const anchorMs = performance.now() - a0;

  console.log(
    `corpora: ${attacks.length} attack sequences, benign ${benign.length} events of ${agents.size} agents`,
  );
  for (const [d, s] of perDetector) console.log(`  ${d.padEnd(24)} ${s.hit}/${s.n}`);
  console.log(
    `detection rate ${(rate * 100).toFixed(2)} % (goal ≥ 99 %)${missed.length ? `; missed: ${missed.join(", ")}` : ""}`,
  );
  console.log(
    `false-positive rate ${(fpRate * 100).toFixed(2)} % of benign agents (goal < 1 %)${
      flagged.size ? `; flagged: ${[...flagged].join(", ")}` : ""
    }; benign findings in all: ${benignFindings.length} (${benignFindings.map((f) => `${f.detector}:${f.subject.id}`).join(", ")})`,
  );
  console.log(
    `engine: ${Math.round(processed / (engineMs / 1000)).toLocaleString("en")} events/s, ${(engineMs / anchorMs).toFixed(2)} × JSON.parse of the same events (anchor ${Math.round(processed / (anchorMs / 1000)).toLocaleString("en")}/s)`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await bench();
