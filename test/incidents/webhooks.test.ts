// Incident webhooks (functions/incident-webhooks.ts): an alert and an emergency channel, each
// delivery signed with the service key (RFC 9421, tag "sigil-webhook") and verified here by a
// receiver on 127.0.0.1 that knows only the service's public key; a dead alert receiver does not
// hold up the emergency channel. The responder's `publish` is this.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, expect, it } from "vitest";
import { incidentWebhooks } from "../../functions/incident-webhooks";
import { createSigner, generateEd25519KeyPair, verifyEd25519 } from "../../shared/crypto";
import { MemoryReplayCache, verifyRequest } from "../../shared/httpsig";
import { silentLogger } from "../../shared/log";

const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function receiver(publicKey: Uint8Array, status: number) {
  const got: {
    ok: boolean;
    tagged: boolean;
    body: { type: string; incident: { incidentId: string } };
  }[] = [];
  const replay = new MemoryReplayCache();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const { address, port } = server.address() as AddressInfo;
    const r = await verifyRequest(
      { method: "POST", url: `http://${address}:${port}${req.url}`, headers, body },
      {
        resolveKey: async (kid) =>
          kid === "svc" ? { status: "active", publicKey } : { status: "unknown" },
        verify: verifyEd25519,
        replayCache: replay,
        allowedAuthorities: [`${address}:${port}`],
      },
    );
    got.push({
      ok: r.ok,
      tagged: /tag="sigil-webhook"/.test(headers.get("signature-input") ?? ""),
      body: JSON.parse(body),
    });
    res.statusCode = status;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

it("alert and emergency deliveries are signed by the service key, on separate channels", async () => {
  const kp = await generateEd25519KeyPair();
  const signer = await createSigner(kp.secretKey, "svc");
  const alert = await receiver(kp.publicKey, 204);
  const dead = await receiver(kp.publicKey, 503);
  const emergency = await receiver(kp.publicKey, 204);
  const hooks = incidentWebhooks({
    alert: [dead.url, alert.url],
    emergency: [emergency.url],
    signer,
    log: silentLogger,
    attempts: 2,
    baseDelayMs: 10,
  });
  hooks.publish("alert", {
    type: "incident.alert",
    incident: { incidentId: "i-1", severity: "high" },
  });
  hooks.publish("emergency", {
    type: "incident.emergency",
    incident: { incidentId: "i-2", severity: "critical" },
  });
  await hooks.idle();
  expect(alert.got).toHaveLength(1);
  expect(alert.got[0]).toMatchObject({
    ok: true,
    tagged: true,
    body: { type: "incident.alert", incident: { incidentId: "i-1" } },
  });
  expect(emergency.got.map((g) => [g.ok, g.body.type, g.body.incident.incidentId])).toEqual([
    [true, "incident.emergency", "i-2"],
  ]);
  expect(dead.got).toHaveLength(2);
});
