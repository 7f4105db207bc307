// Audit retention on the edge (docs/audit.md "Retention"), in real workerd: the cron trigger's
// sweep (edgeRetentionSweep: the shared sweepRetention with the ArchiveObject sink) archives the
// prefix into the ArchiveObject and prunes the AuditObject with the anchor checkpoint. The sweep is
// driven from the test (the cron itself cannot be fired with a moved clock), the objects run in
// workerd. Kept events' inclusion proofs still verify against checkpoints issued before the prune,
// the archive verifies as an export, and a sweep below the enforced minimum prunes nothing.
import { afterAll, describe, expect, it } from "vitest";
import { edgeRetentionSweep } from "../../functions/edge/audit/archive";
import type { ArchiveObject } from "../../functions/edge/audit/archive-object";
import type { Stub } from "../../functions/edge/runtime";
import { hashLeaf, verifyExport, verifyInclusion } from "../../shared/audit";
import { fromBase64 } from "../../shared/encoding";
import { serviceFor } from "../audit/support/harness";
import { durableObjectHarness } from "./support/audit-harness";
import { freshName, remotePort } from "./support/workerd";

const DAY = 86_400_000;
const h = durableObjectHarness();
afterAll(() => h.cleanup?.(), 30_000);

describe("edge retention: archive, then prune with the anchor", () => {
  it("kept events' proofs verify against checkpoints issued before the prune", async () => {
    const s = await serviceFor(h);
    for (let i = 0; i < 5; i++)
      await s.service.append({ eventType: "tool.invoked", agentId: "a", details: { old: i } });
    await new Promise((r) => setTimeout(r, 30));
    const kept: number[] = [];
    for (let i = 0; i < 4; i++)
      kept.push(
        (await s.service.append({ eventType: "tool.invoked", agentId: "a", details: { new: i } }))
          .index,
      );
    const before = await s.service.checkpoint();
    const proofs = await Promise.all(kept.map((i) => s.service.inclusionProof(i, before.treeSize)));
    const leaves = await Promise.all(
      kept.map(async (i) => {
        const [rec] = await s.log.read(i, i + 1);
        return { i, json: rec!.json, ts: Date.parse(JSON.parse(rec!.json).timestamp) };
      }),
    );
    // One day of retention, seen from just under a day after the first kept event: the five
    // older events are past it.
    const now = () => leaves[0]!.ts - 1 + DAY;
    const name = freshName("archive");
    const archive = () => remotePort<Stub<ArchiveObject>>("archive", name);

    await expect(
      edgeRetentionSweep(1, { audit: s.service, now, archive, minimumDays: 2190 }),
    ).rejects.toThrow("below the enforced minimum of 2190");
    expect((await s.log.head()).start).toBe(0);

    const swept = await edgeRetentionSweep(1, { audit: s.service, now, archive });
    expect(swept).toMatchObject({ outcome: "retained", from: 0, to: 5 });
    expect((await s.log.head()).start).toBe(5);
    expect(await s.service.verify()).toMatchObject({ valid: true });

    // The archive, joined from its parts, verifies as an export of [0, 5).
    const names = (await archive().names()) as unknown as { ok: true; value: string[] };
    expect(names.value).toEqual(["default-0-5"]);
    const part = (await archive().read("default-0-5", 0)) as unknown as { value: string };
    const archived = await verifyExport([part.value], {
      keys: s.keys,
      verify: s.verify,
    });
    expect(archived, JSON.stringify(archived.firstInvalid)).toMatchObject({
      valid: true,
      checked: 5,
    });

    // Proofs from before the prune verify against the pre-prune root, and the log still issues
    // the same proofs at that size.
    const root = fromBase64(before.rootHash);
    for (const [k, l] of leaves.entries()) {
      verifyInclusion(
        l.i,
        before.treeSize,
        hashLeaf(l.json),
        proofs[k]!.proof.map(fromBase64),
        root,
      );
      expect((await s.service.inclusionProof(l.i, before.treeSize)).proof).toEqual(
        proofs[k]!.proof,
      );
    }
    // Today's log extends the pre-prune checkpoint.
    const after = await s.service.checkpoint();
    const cons = await s.service.consistencyProof(before.treeSize, after.treeSize);
    expect(cons.proof.length).toBeGreaterThan(0);
    // Nothing more is due: a second sweep prunes nothing.
    expect((await edgeRetentionSweep(1, { audit: s.service, now, archive })).outcome).toBe(
      "nothing-due",
    );
  }, 120_000);
});
