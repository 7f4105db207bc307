// Identity as a hostile client would probe it, on the Node app and the edge app alike:
// - a policy keyed on the caller cannot be spoofed from the request's context (docs/governance.md
//   "Identity comes from the server"); a context carrying agent or request is 400;
// - admin-set groups and trust reach the policy as agent.groups / agent.trust;
// - /v1/sign output can never authenticate a request, and dies with its owner's last key;
// - a request signed for another @authority is refused on a default configuration.
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HELD_SIGNATURE_CONTEXT, type Sigil, SigilError } from "../../sdk";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import { fromBase64Url, toBase64Url, utf8 } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import {
  newKey,
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

async function problemOf(p: Promise<unknown>): Promise<SigilError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SigilError) return e;
    throw e;
  }
  throw new Error("expected a problem response");
}

describe.each(targetNames)("hostile identity on %s", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let auditor: Sigil;

  /** The audit events appended after `from`, in order. */
  async function eventsSince(from: number) {
    const out: { eventType: string; agentId?: string; details: Record<string, unknown> }[] = [];
    let next: number | string | null = from;
    while (next !== null) {
      const page = await auditor.audit.list({ from: Number(next), limit: 500 });
      out.push(...page.events);
      next = page.events.length === 0 ? null : page.next;
    }
    return out;
  }
  const treeSize = async () => (await auditor.audit.checkpoint()).treeSize;

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    auditor = t.client(await registeredKey(admin, "auditor", "auditor-hostile"));
    await admin.policies.put(
      "identity",
      `policy identity {
        allow: read(alice_files) if agent.subject == "alice"
        allow: deploy(prod) if agent.groups.contains("ops") && agent.trust >= 0.5
        allow: whoami if agent.role == "agent" && len(agent.kid) == 43
        allow: clock if request.time.ends_with("Z") && len(request.time) == 20
      }`,
    );
  }, 120_000);
  afterAll(async () => t?.stop());

  describe("the caller cannot speak for someone else", () => {
    it("a policy keyed on agent.subject sees the authenticated subject, not the context's", async () => {
      const alice = t.client(await registeredKey(admin, "agent", "alice"));
      const malloryKey = await registeredKey(admin, "agent", "mallory");
      const mallory = t.client(malloryKey);
      const from = await treeSize();
      // Mallory claims to be Alice: refused, not merged (and never an allow).
      const spoofed = mallory.evaluate({
        action: "read",
        resource: "alice_files",
        context: { agent: { subject: "alice" } },
      });
      expect((await problemOf(spoofed)).code).toBe("reserved-attribute");
      expect(
        (await alice.evaluate({ action: "read", resource: "alice_files", context: {} })).decision,
      ).toBe("allow");
      expect(
        (await mallory.evaluate({ action: "read", resource: "alice_files", context: {} })).decision,
      ).toBe("deny");
      const spoof = await problemOf(
        mallory.evaluate({
          action: "read",
          resource: "alice_files",
          context: { agent: { subject: "alice" } },
        }),
      );
      expect([spoof.status, spoof.code]).toEqual([400, "reserved-attribute"]);
      expect(spoof.errors).toEqual([expect.objectContaining({ path: "context.agent" })]);
      const batch = await problemOf(
        mallory.evaluateBatch([
          { action: "read", resource: "alice_files", context: {} },
          { action: "read", resource: "alice_files", context: { agent: { subject: "alice" } } },
        ]),
      );
      expect([batch.status, batch.code]).toEqual([400, "reserved-attribute"]);
      expect(batch.errors).toEqual([expect.objectContaining({ path: "requests.1.context.agent" })]);
      // Each item of a clean batch gets its caller's identity.
      const results = await mallory.evaluateBatch([
        { action: "read", resource: "alice_files", context: {} },
        { action: "whoami", context: {} },
      ]);
      expect(results.map((d) => d.decision)).toEqual(["deny", "allow"]);
      // Each attempt to speak for someone else is a security event naming the key.
      const attempts = (await eventsSince(from)).filter(
        (e) => e.eventType === "security.event" && e.details.category === "reserved_attribute",
      );
      expect(attempts.map((e) => [e.agentId, e.details.kid, e.details.paths])).toEqual([
        ["mallory", malloryKey.kid, ["context.agent"]],
        ["mallory", malloryKey.kid, ["context.agent"]],
        ["mallory", malloryKey.kid, ["requests.1.context.agent"]],
      ]);
    });

    it("a replayed spoofing request is a replay: refused once as 400, then 401, one event", async () => {
      const k = await registeredKey(admin, "agent", "replayer");
      const url = `${t.url}/v1/evaluate`;
      const body = JSON.stringify({
        action: "read",
        resource: "alice_files",
        context: { agent: { subject: "alice" } },
      });
      const headers = new Headers({ "content-type": "application/json" });
      const sig = await signRequest({ method: "POST", url, headers, body }, k.signer, {
        keyid: k.kid,
      });
      for (const [name, v] of Object.entries(sig)) if (v) headers.set(name, v);
      const from = await treeSize();
      const send = async () => {
        const r = await fetch(url, { method: "POST", headers, body });
        return [
          r.status,
          String(((await r.json()) as { type: string }).type)
            .split("/")
            .pop(),
        ];
      };
      expect(await send()).toEqual([400, "reserved-attribute"]);
      expect(await send()).toEqual([401, "replay"]);
      const events = (await eventsSince(from)).filter(
        (e) => e.details.kid === k.kid || e.agentId === k.kid,
      );
      expect(events.filter((e) => e.eventType === "security.event")).toHaveLength(1);
    });

    it("a context carrying request (or both) is 400 reserved-attribute, naming each", async () => {
      const agent = t.client(await registeredKey(admin, "agent", "clock-agent"));
      const both = await problemOf(
        agent.evaluate({
          action: "clock",
          context: { request: { time: "1999-01-01T00:00:00Z" }, agent: { trust: 1 }, x: 1 },
        }),
      );
      expect([both.status, both.code]).toEqual([400, "reserved-attribute"]);
      expect(both.errors?.map((e) => (e as { path: string }).path).sort()).toEqual([
        "context.agent",
        "context.request",
      ]);
      // request.time is the server's clock, RFC 3339 to the second.
      expect((await agent.evaluate({ action: "clock", context: {} })).decision).toBe("allow");
    });
  });

  describe("admin-set groups and trust", () => {
    it("reach the policy as agent.groups and agent.trust; the request cannot raise them", async () => {
      const ops = await registeredKey(admin, "agent", "ops-bot", { groups: ["ops"], trust: 0.6 });
      const lowTrust = await registeredKey(admin, "agent", "ops-intern", {
        groups: ["ops"],
        trust: 0.4,
      });
      const noGroup = await registeredKey(admin, "agent", "dev-bot", { trust: 0.9 });
      const decide = (k: TestKey) =>
        t.client(k).evaluate({ action: "deploy", resource: "prod", context: {} });
      expect((await decide(ops)).decision).toBe("allow");
      expect((await decide(lowTrust)).decision).toBe("deny");
      expect((await decide(noGroup)).decision).toBe("deny");
      const claim = await problemOf(
        t.client(noGroup).evaluate({
          action: "deploy",
          resource: "prod",
          context: { agent: { groups: ["ops"], trust: 1 } },
        }),
      );
      expect(claim.code).toBe("reserved-attribute");
    });

    it("are returned by GET /v1/keys/:kid, kept across rotation and audited in key.* events", async () => {
      const from = await treeSize();
      const k = await registeredKey(admin, "agent", "rotating-bot", {
        groups: ["ops", "supervisor"],
        trust: 0.25,
      });
      expect(await admin.keys.get(k.kid)).toMatchObject({
        groups: ["ops", "supervisor"],
        trust: 0.25,
      });
      const plain = await registeredKey(admin, "worker", "plain-worker");
      expect(await admin.keys.get(plain.kid)).toMatchObject({ groups: [], trust: 0 });
      const k2 = await newKey();
      await admin.keys.rotate(k.kid, { publicKey: toBase64Url(k2.publicKey) });
      expect(await admin.keys.get(k2.kid)).toMatchObject({
        groups: ["ops", "supervisor"],
        trust: 0.25,
        rotatedFrom: k.kid,
      });
      expect(
        (await t.client(k2).evaluate({ action: "deploy", resource: "prod", context: {} })).decision,
      ).toBe("deny"); // trust 0.25 < 0.5
      const events = await eventsSince(from);
      expect(
        events.find((e) => e.eventType === "key.created" && e.details.kid === k.kid)?.details,
      ).toMatchObject({ groups: ["ops", "supervisor"], trust: 0.25 });
      expect(
        events.find((e) => e.eventType === "key.rotated" && e.details.kid === k2.kid)?.details,
      ).toMatchObject({ groups: ["ops", "supervisor"], trust: 0.25, previousKid: k.kid });
    });

    it("out-of-bounds groups or trust, and the held: subject, are 400", async () => {
      const bad: Record<string, unknown>[] = [
        { groups: ["a b"] },
        { groups: ["x".repeat(65)] },
        { groups: Array.from({ length: 33 }, (_, i) => `g${i}`) },
        { groups: ["dup", "dup"] },
        { groups: "ops" },
        { trust: 1.5 },
        { trust: -1 },
        { trust: "1" },
        { subject: "held:alice" },
      ];
      for (const extra of bad) {
        const k = await newKey();
        const e = await problemOf(
          admin.keys.create({
            role: "agent",
            subject: "bounded",
            publicKey: toBase64Url(k.publicKey),
            ...extra,
          } as Parameters<Sigil["keys"]["create"]>[0]),
        );
        expect([e.status, e.code], JSON.stringify(extra)).toEqual([400, "validation"]);
      }
    });
  });

  describe("/v1/sign: domain-separated, never a request credential, revoked with its owner", () => {
    /** A Signer whose signatures come from /v1/sign: what a thief of /v1/sign output holds. */
    async function heldSigner(agent: Sigil): Promise<Signer> {
      const probe = await agent.signatures.sign(utf8("probe"));
      const held = await admin.keys.get(probe.kid);
      return {
        kid: probe.kid,
        publicKey: fromBase64Url(String((held.publicJwk as { x: string }).x)),
        sign: async (m) => fromBase64Url((await agent.signatures.sign(m)).signature),
      };
    }

    async function sendSigned(signer: Signer, path: string) {
      const url = `${t.url}${path}`;
      const headers = new Headers();
      const sig = await signRequest({ method: "GET", url, headers, body: null }, signer, {
        keyid: signer.kid,
      });
      for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
      const r = await fetch(url, { headers });
      return { status: r.status, json: (await r.json()) as { type: string; detail?: string } };
    }

    it("a signature base signed through /v1/sign does not authenticate a request (401)", async () => {
      const ownerKey = await registeredKey(admin, "agent", "signer-agent");
      const agent = t.client(ownerKey);
      const signer = await heldSigner(agent);
      // An agent route and an auditor route: the held key is neither, whatever its owner is.
      for (const path of ["/v1/audit/checkpoint", "/v1/jobs/x"]) {
        const r = await sendSigned(signer, path);
        expect([r.status, String(r.json.type).split("/").pop()], path).toEqual([
          401,
          "key-unknown",
        ]);
      }
      const held = await admin.keys.get(signer.kid);
      expect(held).toMatchObject({ role: "held", subject: "held:signer-agent", status: "active" });
    });

    it("signs context || message: verify round-trips by kid and by public key, never over the bare message", async () => {
      const agent = t.client(await registeredKey(admin, "agent", "roundtrip-agent"));
      const msg = utf8("pay 10 to bob");
      const { kid, signature } = await agent.signatures.sign(msg);
      const publicJwk = (await admin.keys.get(kid)).publicJwk as {
        kty: "OKP";
        crv: "Ed25519";
        x: string;
      };
      expect(await agent.signatures.verify({ kid, message: toBase64Url(msg), signature })).toEqual({
        valid: true,
        kid,
        keyStatus: "active",
      });
      expect(
        await agent.signatures.verify({
          publicKey: publicJwk,
          message: toBase64Url(msg),
          signature,
        }),
      ).toMatchObject({ valid: true });
      // Offline: the signature covers the stated prefix and the message, not the message alone.
      const pk = fromBase64Url(publicJwk.x);
      const sig = fromBase64Url(signature);
      expect(await verifyEd25519(pk, utf8(`${HELD_SIGNATURE_CONTEXT}pay 10 to bob`), sig)).toBe(
        true,
      );
      expect(await verifyEd25519(pk, msg, sig)).toBe(false);
      expect(
        (
          (await (await fetch(`${t.url}/openapi.json`)).json()) as {
            paths: Record<string, { post?: { description?: string } }>;
          }
        ).paths["/v1/sign"]?.post?.description,
      ).toContain("sigil.held-signature.v1\\n");
    });

    it("revoking the owner's last key revokes its held key: old output stops verifying, /v1/sign refuses", async () => {
      const first = await registeredKey(admin, "agent", "short-lived");
      const second = await registeredKey(admin, "agent", "short-lived");
      const agent = t.client(first);
      const msg = toBase64Url(utf8("pre-signed"));
      const { kid: heldKid, signature } = await agent.signatures.sign(fromBase64Url(msg));
      const from = await treeSize();
      // Another key of the subject still stands: the held key stays.
      await admin.keys.revoke(first.kid);
      expect((await admin.keys.get(heldKid)).status).toBe("active");
      expect(
        await auditor.signatures.verify({ kid: heldKid, message: msg, signature }),
      ).toMatchObject({ valid: true });
      // Its last key goes: so does the held key, audited.
      await admin.keys.revoke(second.kid);
      expect((await admin.keys.get(heldKid)).status).toBe("revoked");
      expect(await auditor.signatures.verify({ kid: heldKid, message: msg, signature })).toEqual({
        valid: false,
        kid: heldKid,
        keyStatus: "revoked",
      });
      const revoked = (await eventsSince(from)).filter(
        (e) => e.eventType === "key.revoked" && e.details.kid === heldKid,
      );
      expect(revoked).toHaveLength(1);
      expect(revoked[0]!.details).toMatchObject({ heldByService: true, ownerKid: second.kid });
      // The owner cannot sign any more (its key is revoked), and the held key never could.
      expect((await problemOf(t.client(second).signatures.sign(utf8("again")))).status).toBe(401);
      // A new key for the subject gets a fresh held key, never the revoked one back.
      const third = await registeredKey(admin, "agent", "short-lived");
      const again = await t.client(third).signatures.sign(utf8("after"));
      expect(again.kid).not.toBe(heldKid);
    });
  });

  describe("@authority", () => {
    /** A GET signed for `authority`, sent here with that Host header (as a replay would be). */
    function getAs(authority: string, key: TestKey, path: string) {
      return new Promise<{ status: number; type: string }>((resolve, reject) => {
        void (async () => {
          const headers = new Headers({ host: authority });
          const sig = await signRequest(
            { method: "GET", url: `http://${authority}${path}`, headers, body: null },
            key.signer,
            { keyid: key.kid },
          );
          const target = new URL(t.url);
          const req = httpRequest(
            {
              host: target.hostname,
              port: target.port,
              path,
              method: "GET",
              headers: { host: authority, ...sig },
            },
            (res) => {
              let text = "";
              res.on("data", (d) => (text += d));
              res.on("end", () => {
                const body = text ? (JSON.parse(text) as { type?: string }) : {};
                resolve({ status: res.statusCode ?? 0, type: body.type?.split("/").pop() ?? "" });
              });
            },
          );
          req.on("error", reject);
          req.end();
        })().catch(reject);
      });
    }

    it("a request signed for another service is 401 signature-invalid; its own authority passes", async () => {
      const k = await registeredKey(admin, "auditor", "authority-auditor");
      const own = new URL(t.url).host;
      expect(await getAs(own, k, "/v1/audit/checkpoint")).toMatchObject({ status: 200 });
      expect(await getAs("other.service.example:8443", k, "/v1/audit/checkpoint")).toEqual({
        status: 401,
        type: "signature-invalid",
      });
      // The same port on another host name is another service too.
      const port = new URL(t.url).port;
      expect(await getAs(`evil.example:${port}`, k, "/v1/audit/checkpoint")).toEqual({
        status: 401,
        type: "signature-invalid",
      });
      // localhost with the service's port is the local start's other name for it.
      expect(await getAs(`localhost:${port}`, k, "/v1/audit/checkpoint")).toMatchObject({
        status: 200,
      });
    });
  });
});
