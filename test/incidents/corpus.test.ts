// The labelled incident corpora in test/vectors/incidents/ are exactly what their seeded generator
// (test/bench/corpora/incidents.ts) gives, so the accuracy the bench reports is reproducible, and
// they have the shape the bench relies on (100 benign agents over 10 minutes, every detector).
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { RULES } from "../../shared/incidents";
import { CORPUS_DIR, corpusFiles } from "../bench/corpora/incidents";

it("the corpora in the repository are the seeded generator's output", () => {
  const f = corpusFiles();
  expect(readFileSync(new URL("benign.ndjson", CORPUS_DIR), "utf8")).toBe(f.benign);
  expect(readFileSync(new URL("attacks.ndjson", CORPUS_DIR), "utf8")).toBe(f.attacks);
  const benign = f.benign
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { t: number; agent: string });
  expect(
    new Set(benign.map((e) => e.agent).filter((a) => a.startsWith("agent-"))).size,
  ).toBeGreaterThanOrEqual(100);
  expect(Math.max(...benign.map((e) => e.t))).toBeGreaterThan(9 * 60_000);
  const detectors = new Set(
    f.attacks
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { detector: string }).detector),
  );
  expect([...detectors].sort()).toEqual(RULES.map((r) => r.id).sort());
});
