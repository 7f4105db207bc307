// One contract suite for every AuditLogPort adapter (memory, Redis), driven through AuditService.
import { afterAll, describe, expect, it } from "vitest";
import {
  AuditError,
  type AuditEvent,
  type AuditEventField,
  computeEventHash,
  EVENT_FIELDS,
  eventJson,
  eventParts,
  GENESIS_HASH,
  hashChildren,
  hashLeaf,
  openCheckpoint,
  signingBytes,
  verifyConsistency,
  verifyExport,
  verifyInclusion,
} from "../../shared/audit";
import {
  canonicalJson,
  fromBase64,
  fromBase64Url,
  toBase64,
  toBase64Url,
  utf8,
} from "../../shared/encoding";
import { seedOf, staticKeys, webcryptoSigner, webcryptoVerify } from "../audit/support/crypto";
import {
  type Harness,
  memoryHarness,
  ORIGIN,
  redisHarness,
  serviceFor,
} from "../audit/support/harness";
import { durableObjectHarness } from "../edge/support/audit-harness";

// RFC 9162 MTH straight from the definition, independent of the code under test.
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return hashChildren(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

async function appendN(service: { append(i: unknown): Promise<unknown> }, n: number, tag = "x") {
  for (let i = 0; i < n; i++) {
    await service.append({
      eventType: "tool.invoked",
      agentId: `agent-${i % 3}`,
      details: { i, tag, s: "abcdef" },
    });
  }
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of it) out.push(l);
  return out;
}

// Changes one byte inside a member's value, keeping the record well-formed, as a careful attacker would.
function flip(field: AuditEventField, e: AuditEvent): AuditEvent {
  const swapChar = (s: string, at: number, alphabet: string) => {
    const c = s[at]!;
    const next = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length]!;
    return s.slice(0, at) + next + s.slice(at + 1);
  };
  const hex = "0123456789abcdef";
  switch (field) {
    case "index":
      return { ...e, index: e.index + 1 };
    case "details":
      return { ...e, details: { ...e.details, s: "abcdeg" } };
    case "timestamp":
      return { ...e, timestamp: swapChar(e.timestamp, 22, "0123456789") };
    case "eventId":
      return { ...e, eventId: swapChar(e.eventId, 30, hex) };
    case "previousHash":
    case "eventHash":
      return { ...e, [field]: swapChar(e[field], 10, hex) };
    case "signature":
      return { ...e, signature: swapChar(e.signature, 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") };
    case "kid":
      return { ...e, kid: "audit-2" };
    default:
      return { ...e, [field]: swapChar(e[field] as string, 2, "abcdefghijklmnopqrstuvwxyz") };
  }
}

const harnesses: Harness[] = [memoryHarness(), redisHarness(), durableObjectHarness()];
afterAll(async () => {
  for (const h of harnesses) await h.cleanup();
});

for (const h of harnesses) {
  describe(`audit contract: ${h.name}`, () => {
    it("chains from genesis, with UUIDv7 ids, RFC 3339 ms timestamps and valid signatures", async () => {
      const { service, signer, verify } = await serviceFor(h);
      const acks = [];
      for (let i = 0; i < 5; i++)
        acks.push(await service.append({ eventType: "agent.created", details: { i } }));
      expect(acks.map((a) => a.index)).toEqual([0, 1, 2, 3, 4]);
      expect(acks[0]!.previousHash).toBe(GENESIS_HASH);
      for (let i = 0; i < 5; i++) {
        const e = await service.get(i);
        expect(e.agentId).toBe("system");
        expect(e.chain).toBe("default");
        if (i > 0) expect(e.previousHash).toBe(acks[i - 1]!.eventHash);
        const parts = eventParts(e);
        expect(computeEventHash(parts)).toBe(e.eventHash);
        expect(
          await verify(signer.publicKey, signingBytes(parts), fromBase64Url(e.signature)),
        ).toBe(true);
        expect(e.eventId[14]).toBe("7");
        // The UUIDv7 millisecond field is the timestamp.
        expect(Number.parseInt(e.eventId.replace(/-/g, "").slice(0, 12), 16)).toBe(
          Date.parse(e.timestamp),
        );
        expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        if (i > 0) expect(e.timestamp >= (await service.get(i - 1)).timestamp).toBe(true);
        expect(e.eventId > (i > 0 ? (await service.get(i - 1)).eventId : "")).toBe(true);
      }
      expect(await service.verify()).toEqual({ valid: true, checked: 5 });
    });

    it("acknowledges concurrent appends on one gap-free, duplicate-free chain", async () => {
      const { service } = await serviceFor(h);
      const acks = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          service.append({ eventType: "policy.decision", details: { i } }),
        ),
      );
      const idx = acks.map((a) => a.index).sort((a, b) => a - b);
      expect(idx).toEqual(Array.from({ length: 400 }, (_, i) => i));
      expect(new Set(acks.map((a) => a.eventId)).size).toBe(400);
      for (const a of acks.slice(0, 20))
        expect((await service.get(a.index)).eventId).toBe(a.eventId);
      expect(await service.verify()).toEqual({ valid: true, checked: 400 });
      const page = await service.list(390, 50);
      expect(page.events.map((e) => e.index)).toEqual(
        Array.from({ length: 10 }, (_, i) => 390 + i),
      );
      expect(page.next).toBeNull();
      expect((await service.list(0, 10)).next).toBe(10);
    });

    it("rejects malformed input with a reason and stores nothing", async () => {
      const { service } = await serviceFor(h);
      for (const bad of [
        { eventType: "nodot", details: {} },
        { eventType: "tool.invoked" },
        { eventType: "tool.invoked", details: [] },
        { eventType: "tool.invoked", details: { x: Number.NaN } },
        { eventType: "tool.invoked", details: {}, extra: 1 },
        { eventType: "tool.invoked", details: { big: "x".repeat(70_000) } },
      ]) {
        await expect(service.append(bad)).rejects.toMatchObject({ code: "invalid-input" });
      }
      expect((await service.log.head()).size).toBe(0);
    });

    it("names the index and field when one byte of any stored field changes", async () => {
      const { service, tamper } = await serviceFor(h);
      await appendN(service, 6);
      for (const field of EVENT_FIELDS) {
        let original = "";
        await tamper(3, (r) => {
          original = r!.json;
          const e = JSON.parse(r!.json) as AuditEvent;
          return { ...r!, json: eventJson(eventParts(flip(field, e))) };
        });
        const report = await service.verify();
        expect(report.valid, field).toBe(false);
        expect(report.firstInvalid?.index, field).toBe(3);
        expect(report.firstInvalid?.field, field).toBe(field);
        expect(report.checked, field).toBe(3);
        await tamper(3, (r) => ({ ...r!, json: original }));
      }
      expect((await service.verify()).valid).toBe(true);
    });

    it("reports gaps and reordering", async () => {
      const { service, tamper, log } = await serviceFor(h);
      await appendN(service, 5);
      const [two, three] = await log.read(2, 4);
      await tamper(2, () => undefined);
      expect((await service.verify()).firstInvalid).toMatchObject({
        index: 2,
        code: "gap",
        field: "index",
      });
      await tamper(2, () => ({ json: three!.json }));
      await tamper(3, () => ({ json: two!.json }));
      expect((await service.verify()).firstInvalid).toMatchObject({
        index: 2,
        code: "reordering",
        field: "index",
      });
    });

    it("reports a timestamp going back, even when re-signed by the real key", async () => {
      const { service, tamper, signer } = await serviceFor(h);
      await appendN(service, 3);
      const prev = await service.get(1);
      const e = await service.get(2);
      const back = new Date(Date.parse(prev.timestamp) - 1000).toISOString();
      const parts = eventParts({ ...e, timestamp: back });
      const eventHash = computeEventHash(parts);
      parts.eventHash = canonicalJson(eventHash);
      const signature = toBase64Url(await signer.sign(signingBytes(parts)));
      parts.signature = canonicalJson(signature);
      await tamper(2, () => ({ json: eventJson(parts) }));
      expect((await service.verify(0, 3)).firstInvalid).toMatchObject({
        index: 2,
        code: "timestamp-back",
        field: "timestamp",
      });
    });

    it("checks each signature against the key valid at the event's time", async () => {
      const { service, log } = await serviceFor(h);
      await appendN(service, 3);
      const signer = await webcryptoSigner(seedOf(7), "audit-1");
      const base = { log, signer, verify: webcryptoVerify(), origin: ORIGIN };
      const { AuditService } = await import("../../shared/audit");
      const unknown = new AuditService({ ...base, keys: staticKeys([]) });
      expect((await unknown.verify()).firstInvalid).toMatchObject({
        index: 0,
        code: "unknown-key",
        field: "kid",
      });
      const expired = new AuditService({
        ...base,
        keys: staticKeys([
          { kid: "audit-1", publicKey: signer.publicKey, validUntil: "2000-01-01T00:00:00.000Z" },
        ]),
      });
      expect((await expired.verify()).firstInvalid).toMatchObject({
        index: 0,
        code: "key-not-valid",
      });
      const other = await webcryptoSigner(seedOf(9), "audit-1");
      const wrong = new AuditService({
        ...base,
        keys: staticKeys([{ kid: "audit-1", publicKey: other.publicKey }]),
      });
      expect((await wrong.verify()).firstInvalid).toMatchObject({
        index: 0,
        code: "bad-signature",
      });
    });

    it("signs checkpoints whose roots match the events, with inclusion and consistency proofs", async () => {
      const { service, verify, signer, log } = await serviceFor(h);
      await appendN(service, 13);
      const cp1 = await service.checkpoint();
      expect(cp1.treeSize).toBe(13);
      const body = await openCheckpoint(
        cp1.checkpoint,
        [{ name: ORIGIN, publicKey: signer.publicKey }],
        verify,
        ORIGIN,
      );
      expect(body.size).toBe(13);
      expect(toBase64(body.rootHash)).toBe(cp1.rootHash);
      expect(cp1.checkpoint.startsWith(`${ORIGIN}\n13\n${cp1.rootHash}\n\n\u2014 ${ORIGIN} `)).toBe(
        true,
      );
      const leaves = (await log.read(0, 13)).map((r) => hashLeaf(utf8(r!.json)));
      expect(toBase64(mth(leaves))).toBe(cp1.rootHash);
      expect(await service.checkpoint()).toEqual(cp1);
      for (let i = 0; i < 13; i++) {
        const p = await service.inclusionProof(i, 13);
        expect(p.rootHash).toBe(cp1.rootHash);
        expect(() =>
          verifyInclusion(
            i,
            13,
            fromBase64(p.leafHash),
            p.proof.map(fromBase64),
            fromBase64(cp1.rootHash),
          ),
        ).not.toThrow();
        expect(p.leafHash).toBe(toBase64(leaves[i]!));
      }
      await appendN(service, 8);
      const cp2 = await service.checkpoint();
      expect(cp2.treeSize).toBe(21);
      for (const m of [1, 4, 7, 13, 16, 21]) {
        const c = await service.consistencyProof(m, 21);
        expect(c.toRoot).toBe(cp2.rootHash);
        expect(() =>
          verifyConsistency(
            m,
            21,
            c.proof.map(fromBase64),
            fromBase64(c.fromRoot),
            fromBase64(c.toRoot),
          ),
        ).not.toThrow();
      }
      const c13 = await service.consistencyProof(13, 21);
      expect(c13.fromRoot).toBe(cp1.rootHash);
      await expect(service.inclusionProof(21, 21)).rejects.toBeInstanceOf(AuditError);
    });

    it("refuses to sign a checkpoint inconsistent with one it signed, and verify flags the leaf", async () => {
      const { service, tamperNode } = await serviceFor(h);
      await appendN(service, 9);
      await service.checkpoint();
      await tamperNode({ level: 0, index: 3 }, new Uint8Array(32).fill(1));
      await tamperNode({ level: 1, index: 1 }, new Uint8Array(32).fill(2));
      await tamperNode({ level: 2, index: 0 }, new Uint8Array(32).fill(3));
      await tamperNode({ level: 3, index: 0 }, new Uint8Array(32).fill(4));
      await appendN(service, 3);
      await expect(service.checkpoint()).rejects.toMatchObject({ code: "inconsistent" });
      expect((await service.verify()).firstInvalid).toMatchObject({
        index: 3,
        code: "merkle-mismatch",
      });
    });

    it("exports NDJSON that verifies offline with only the public keys", async () => {
      const { service, keys } = await serviceFor(h);
      await appendN(service, 25);
      const lines = await collect(service.export());
      expect(lines).toHaveLength(26);
      const verify = webcryptoVerify();
      const ok = await verifyExport(lines, { keys, verify });
      expect(ok).toMatchObject({
        valid: true,
        checked: 25,
        checkpoint: { treeSize: 25, verified: true },
      });
      const partial = await verifyExport(await collect(service.export(10, 20)), { keys, verify });
      expect(partial).toMatchObject({
        valid: true,
        checked: 10,
        checkpoint: { treeSize: 20, verified: true },
      });
      // One byte changed in the details of index 7.
      const bad = [...lines];
      bad[8] = bad[8]!.replace('"abcdef"', '"abcdeg"');
      expect((await verifyExport(bad, { keys, verify })).firstInvalid).toMatchObject({
        index: 7,
        code: "tampered",
      });
      // A dropped line is a gap.
      const dropped = lines.filter((_, i) => i !== 5);
      expect((await verifyExport(dropped, { keys, verify })).firstInvalid).toMatchObject({
        index: 4,
      });
      // Arbitrary chunking of the text stream is fine.
      const text = lines.join("");
      const chunks = text.match(/[\s\S]{1,777}/g)!;
      expect((await verifyExport(chunks, { keys, verify })).valid).toBe(true);
    });

    it("retention archives and prunes a prefix; the rest still verifies and proves", async () => {
      const { service, keys, verify } = await serviceFor(h);
      await appendN(service, 50);
      const before = await service.checkpoint();
      let archived: string[] = [];
      const res = await service.retain({
        before: 20,
        archive: async (lines) => {
          archived = await collect(lines);
        },
      });
      expect(res.archived).toBe(20);
      expect(res.anchor.checkpoint.treeSize).toBe(20);
      expect(archived).toHaveLength(21);
      expect(await verifyExport(archived, { keys, verify })).toMatchObject({
        valid: true,
        checked: 20,
      });
      expect(await service.log.head()).toMatchObject({ start: 20, size: 50 });
      await expect(service.get(5)).rejects.toMatchObject({ code: "not-found" });
      expect(await service.verify()).toEqual({ valid: true, checked: 30 });
      expect(await service.verify(0, 50)).toEqual({ valid: true, checked: 30 });
      expect((await service.list()).events[0]!.index).toBe(20);
      const p = await service.inclusionProof(33, 50);
      expect(p.rootHash).toBe(before.rootHash);
      expect(() =>
        verifyInclusion(
          33,
          50,
          fromBase64(p.leafHash),
          p.proof.map(fromBase64),
          fromBase64(before.rootHash),
        ),
      ).not.toThrow();
      await appendN(service, 7);
      const after = await service.checkpoint();
      const c = await service.consistencyProof(50, 57);
      expect(() =>
        verifyConsistency(
          50,
          57,
          c.proof.map(fromBase64),
          fromBase64(before.rootHash),
          fromBase64(after.rootHash),
        ),
      ).not.toThrow();
      const rest = await verifyExport(await collect(service.export()), { keys, verify });
      expect(rest).toMatchObject({
        valid: true,
        checked: 37,
        from: 20,
        checkpoint: { treeSize: 57, verified: true },
      });
      // A second cut moves the anchor; nothing in between breaks.
      await service.retain({ before: 41, archive: async (l) => void (await collect(l)) });
      expect(await service.verify()).toEqual({ valid: true, checked: 16 });
      await expect(service.retain({ before: 30, archive: async () => {} })).rejects.toMatchObject({
        code: "out-of-range",
      });
    });
  });
}
