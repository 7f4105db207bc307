// Two nodes share one policy store, each behind a RevisionCachingStore: a node's own write applies
// at once, another node's when its announcement arrives (or within ttlMs if it was lost), and
// between changes the revision is not re-read for every decision.
import { describe, expect, it } from "vitest";
import {
  type EvaluationRequest,
  MemoryPolicyStore,
  PolicyEngine,
  RevisionCachingStore,
} from "../../shared/policy";
import { memoryBus } from "../support/bus";

const req: EvaluationRequest = { action: "read", resource: "doc", context: {} };
const allow = "policy open {\n  allow: read(doc)\n}";
const deny = "policy closed {\n  deny: read(doc)\n}";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nodes(ttlMs: { a: number; b: number }) {
  const shared = new MemoryPolicyStore();
  let revisionReads = 0;
  const counted = Object.assign(Object.create(shared) as MemoryPolicyStore, {
    revision: () => {
      revisionReads++;
      return shared.revision();
    },
  });
  const bus = memoryBus();
  const a = await PolicyEngine.create({
    store: new RevisionCachingStore(shared, { ttlMs: ttlMs.a, bus: bus.make() }),
    cache: false,
  });
  const b = await PolicyEngine.create({
    store: new RevisionCachingStore(counted, { ttlMs: ttlMs.b, bus: bus.make() }),
    cache: false,
  });
  const decide = async (e: PolicyEngine) => {
    await e.reload();
    return e.evaluate(req).decision;
  };
  return { a, b, bus, decide, reads: () => revisionReads };
}

describe("RevisionCachingStore", () => {
  it("another node's write applies when its announcement arrives", async () => {
    const { a, b, decide } = await nodes({ a: 60_000, b: 60_000 });
    await a.put("open", allow);
    expect(await decide(b)).toBe("allow");
    await a.put("closed", deny);
    expect(await decide(a)).toBe("deny");
    expect(await decide(b)).toBe("deny");
  });

  it("does not re-read the revision for every decision between changes", async () => {
    const { a, b, decide, reads } = await nodes({ a: 60_000, b: 60_000 });
    await a.put("open", allow);
    await decide(b);
    const before = reads();
    for (let i = 0; i < 50; i++) expect(await decide(b)).toBe("allow");
    expect(reads()).toBe(before);
  });

  it("a lost announcement is bounded by ttlMs, and a reconnect resets", async () => {
    const { a, b, bus, decide } = await nodes({ a: 60_000, b: 50 });
    await a.put("open", allow);
    expect(await decide(b)).toBe("allow");
    bus.drop = true;
    await a.put("closed", deny);
    await sleep(120);
    expect(await decide(b)).toBe("deny");

    const slow = await nodes({ a: 60_000, b: 60_000 });
    await slow.a.put("open", allow);
    expect(await slow.decide(slow.b)).toBe("allow");
    slow.bus.drop = true;
    await slow.a.put("closed", deny);
    expect(await slow.decide(slow.b)).toBe("allow"); // stale: the announcement was lost...
    slow.bus.reset(); // ...until the subscriber reconnects
    expect(await slow.decide(slow.b)).toBe("deny");
  });

  it("ttlMs 0 re-reads every time", async () => {
    const { a, b, decide, reads } = await nodes({ a: 0, b: 0 });
    await a.put("open", allow);
    await decide(b);
    const before = reads();
    await decide(b);
    await decide(b);
    expect(reads()).toBe(before + 2);
  });
});
